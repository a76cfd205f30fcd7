using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>The password check every password login path shares (login page, password grant).</summary>
public static class PasswordCheck
{
    static readonly User Nobody = new();

    /// <summary>
    /// Returns the user when the password is right and the account may sign in, else null. An unknown email, a
    /// wrong password and a locked account answer alike, and an unknown email still pays for one password hash,
    /// so neither the answer nor its timing tells whether an account exists. Failures count towards lockout.
    /// </summary>
    public static async Task<User?> SignInAsync(UserManager<User> users, SignInManager<User> signIn, string? email, string? password)
    {
        var user = string.IsNullOrWhiteSpace(email) ? null : await users.FindByEmailAsync(email);
        if (user is null)
        {
            users.PasswordHasher.HashPassword(Nobody, password ?? "");
            return null;
        }

        var result = await signIn.CheckPasswordSignInAsync(user, password ?? "", lockoutOnFailure: true);
        if (!result.Succeeded)
            return null;

        user.LastLoginAt = DateTimeOffset.UtcNow;
        await users.UpdateAsync(user);
        return user;
    }
}
