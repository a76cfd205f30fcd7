using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>
/// The step between a temporary password and a sign-in (<see cref="User.PasswordChangeRequired"/>): the login page took
/// the right temporary password and now asks for a new one. What it carries to that form is a sealed, 10-minute pass
/// bound to the account's security stamp, not the password: it cannot be replayed once the password has changed.
/// </summary>
public static class TemporaryPassword
{
    static readonly TimeSpan PassLifetime = TimeSpan.FromMinutes(10);
    const string Purpose = "Identity.Server.Account.TemporaryPassword";

    public static string Pass(IDataProtectionProvider protection, User user) =>
        protection.CreateProtector(Purpose).ToTimeLimitedDataProtector().Protect(user.Id + "\n" + user.SecurityStamp, PassLifetime);

    /// <summary>The account the pass was made for, if it is genuine, fresh, and the account still waits for its new password.</summary>
    public static async Task<User?> RedeemAsync(IDataProtectionProvider protection, UserManager<User> users, string? pass)
    {
        string payload;
        try
        {
            payload = string.IsNullOrEmpty(pass) ? "" : protection.CreateProtector(Purpose).ToTimeLimitedDataProtector().Unprotect(pass);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
        var parts = payload.Split('\n');
        return parts.Length == 2 && await users.FindByIdAsync(parts[0]) is { PasswordChangeRequired: true } user && user.SecurityStamp == parts[1]
            ? user
            : null;
    }

    /// <summary>
    /// Puts the user's own password in place of the temporary one (the registration rules apply; a new security stamp
    /// ends the pass), and ends whatever sessions the account still had.
    /// </summary>
    public static async Task<IdentityResult> ReplaceAsync(UserManager<User> users, SecurityEvents events, Sessions.SessionStore sessions, User user,
        string password)
    {
        if (await Users.Accounts.ReplacePasswordAsync(users, user, password) is { Succeeded: false } refused)
            return refused;
        await events.RaiseAsync(EventTypes.UserUpdated, SecurityEvents.Subject.Of(user), new { changed = new[] { "password", "password_change_required" }, source = "required_change" });
        var updated = await users.UpdateAsync(user);
        if (updated.Succeeded)
            await sessions.RevokeAllAsync(user.Id, except: null);
        return updated;
    }
}
