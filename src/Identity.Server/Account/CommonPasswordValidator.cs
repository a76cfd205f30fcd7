using System.Collections.Frozen;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>
/// NIST 800-63B: beyond the length rule (Identity's RequiredLength), refuse passwords known from breaches, made of
/// one repeated character, or made of the account's own email. No composition rules.
/// </summary>
public sealed class CommonPasswordValidator : IPasswordValidator<User>
{
    static readonly FrozenSet<string> Common = Load();

    public Task<IdentityResult> ValidateAsync(UserManager<User> manager, User user, string? password)
    {
        password ??= "";
        var email = user.Email ?? "";
        var local = email.IndexOf('@') is var at and > 0 ? email[..at] : null;

        if (Common.Contains(password) || (password.Length > 0 && password.All(c => c == password[0])))
            return Fail("CommonPassword", "This password is too common: choose one that is not in lists of breached passwords.");
        if ((email.Length > 0 && password.Contains(email, StringComparison.OrdinalIgnoreCase)) ||
            (local is not null && password.Equals(local, StringComparison.OrdinalIgnoreCase)))
            return Fail("PasswordContainsEmail", "The password must not be made of the email address.");
        return Task.FromResult(IdentityResult.Success);
    }

    static Task<IdentityResult> Fail(string code, string description) =>
        Task.FromResult(IdentityResult.Failed(new IdentityError { Code = code, Description = description }));

    static FrozenSet<string> Load()
    {
        using var stream = typeof(CommonPasswordValidator).Assembly.GetManifestResourceStream("Identity.Server.Account.common-passwords.txt")
            ?? throw new InvalidOperationException("The common password list is missing from the assembly.");
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
            if (line.Length > 0 && !line.StartsWith('#'))
                lines.Add(line);
        return lines.ToFrozenSet(StringComparer.OrdinalIgnoreCase);
    }
}
