using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>The password check every password login path shares (login page, password grant, the auth API).</summary>
public static class PasswordCheck
{
    public sealed record Outcome(User? User, DateTimeOffset? LockedUntil)
    {
        public static readonly Outcome Invalid = new(null, null);
    }

    static readonly User Nobody = new();

    /// <summary>
    /// Signs the user in when the password is right and the account is not locked. An unknown email and a wrong
    /// password answer alike, and an unknown email still pays for one password hash, so neither the answer nor its
    /// timing tells whether an account exists. A locked account says so only to the right password; wrong guesses
    /// during a lockout still count and extend it.
    /// </summary>
    public static async Task<Outcome> SignInAsync(UserManager<User> users, SignInManager<User> signIn, string? email, string? password)
    {
        var user = string.IsNullOrWhiteSpace(email) ? null : await users.FindByEmailAsync(email);
        if (user is null)
        {
            users.PasswordHasher.HashPassword(Nobody, password ?? "");
            return Outcome.Invalid;
        }

        if (await users.IsLockedOutAsync(user))
        {
            if (await users.CheckPasswordAsync(user, password ?? ""))
                return new Outcome(null, await users.GetLockoutEndDateAsync(user));
            await users.AccessFailedAsync(user);
            return Outcome.Invalid;
        }

        var result = await signIn.CheckPasswordSignInAsync(user, password ?? "", lockoutOnFailure: true);
        if (!result.Succeeded)
            return result.IsLockedOut && await users.CheckPasswordAsync(user, password ?? "")
                ? new Outcome(null, await users.GetLockoutEndDateAsync(user))
                : Outcome.Invalid;

        user.LastLoginAt = DateTimeOffset.UtcNow;
        await users.UpdateAsync(user);
        return new Outcome(user, null);
    }
}
