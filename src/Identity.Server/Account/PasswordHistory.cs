using System.Text.Json;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>
/// Identity:Passwords:History = N (Keycloak's "Not Recently Used" policy; PCI DSS 8.3.7 asks for 4): a new password
/// must differ from the account's last N, the current one included. Off (0) by default, as in Keycloak and ASP.NET
/// Core Identity. The earlier ones are kept as their PBKDF2 hashes beside the account (<see cref="User.PasswordHistory"/>),
/// never in the clear, and only as many as the rule needs; every way a password is set (the user, a reset link, an
/// administrator, a directory) goes through <see cref="Users.Accounts.ReplacePasswordAsync"/>, which checks and records.
/// </summary>
public sealed class PasswordHistory(IConfiguration configuration) : IPasswordValidator<User>
{
    public const string Setting = "Identity:Passwords:History";
    public const int Most = 24;

    int Length => Math.Clamp(configuration.GetValue(Setting, 0), 0, Most);

    public Task<IdentityResult> ValidateAsync(UserManager<User> manager, User user, string? password)
    {
        if (Length == 0 || user.PasswordHash is null || password is null)
            return Task.FromResult(IdentityResult.Success);
        // Each check is a full PBKDF2 verification: the rule costs one per remembered password, at changes only.
        var recent = Earlier(user).Take(Length - 1).Prepend(user.PasswordHash);
        var reused = recent.Any(hash => manager.PasswordHasher.VerifyHashedPassword(user, hash, password) != PasswordVerificationResult.Failed);
        return Task.FromResult(reused
            ? IdentityResult.Failed(new IdentityError
            {
                Code = "PasswordRecentlyUsed",
                Description = $"This password was used recently: choose one that is not among your last {Length}.",
            })
            : IdentityResult.Success);
    }

    /// <summary>Keeps the hash being replaced, as the newest earlier password, and no more than the rule needs.</summary>
    public void Remember(User user)
    {
        if (Length <= 1 || user.PasswordHash is null)
        {
            user.PasswordHistory = null;
            return;
        }
        user.PasswordHistory = JsonSerializer.Serialize(Earlier(user).Prepend(user.PasswordHash).Take(Length - 1).ToList());
    }

    static IEnumerable<string> Earlier(User user) =>
        string.IsNullOrEmpty(user.PasswordHistory) ? [] : JsonSerializer.Deserialize<List<string>>(user.PasswordHistory) ?? [];
}
