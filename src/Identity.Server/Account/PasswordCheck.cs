using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Account;

/// <summary>The password check every password login path shares (login page, password grant, the auth API).</summary>
public static class PasswordCheck
{
    /// <summary>
    /// The user signed in; or why not: a locked account (told only to its right password; a deactivated one is locked
    /// for good, <see cref="Users.Accounts.IsDeactivation"/>), a network that failed too often, or an account whose
    /// address must be verified first (<see cref="Users.Accounts.AwaitsVerification"/>; told only to its right password),
    /// or an account whose password is temporary (<see cref="User.PasswordChangeRequired"/>): the right one, which must
    /// be replaced before it signs anyone in.
    /// </summary>
    public sealed record Outcome(User? User, DateTimeOffset? LockedUntil, TimeSpan? RetryAfter = null, bool AwaitsVerification = false,
        User? MustChangePassword = null)
    {
        public static readonly Outcome Invalid = new(null, null);
    }

    static readonly User Nobody = new();

    /// <summary>
    /// Signs the user in when the password is right and the account is not locked. An unknown email and a wrong
    /// password answer alike, and an unknown email still pays for one password hash, so neither the answer nor its
    /// timing tells whether an account exists. A locked account says so only to the right password; wrong guesses
    /// during a lockout still count and extend it. Every failure also counts against the caller's network
    /// (<see cref="FailedSignIns"/>), which may refuse the attempt before any of this.
    /// </summary>
    public static async Task<Outcome> SignInAsync(UserManager<User> users, SignInManager<User> signIn, SecurityEvents events, IdentityDbContext db,
        FailedSignIns failures, string? email, string? password)
    {
        if (failures.RetryAfter(signIn.Context) is { } wait)
            return new Outcome(null, null, wait);
        var outcome = await CheckAsync(users, signIn, events, db, email, password);
        if (outcome.User is null && !outcome.AwaitsVerification && outcome.MustChangePassword is null)
            failures.Record(signIn.Context);
        return outcome;
    }

    static async Task<Outcome> CheckAsync(UserManager<User> users, SignInManager<User> signIn, SecurityEvents events, IdentityDbContext db,
        string? email, string? password)
    {
        var user = string.IsNullOrWhiteSpace(email) ? null : await users.FindByEmailAsync(email);
        if (user is null)
        {
            users.PasswordHasher.HashPassword(Nobody, password ?? "");
            await events.RaiseNowAsync(EventTypes.AuthFailed, null, new { reason = "unknown_email", email = email?[..Math.Min(email.Length, 256)] }, success: false);
            return Outcome.Invalid;
        }

        if (await users.IsLockedOutAsync(user))
        {
            var right = await users.CheckPasswordAsync(user, password ?? "");
            await events.RaiseAsync(EventTypes.AuthFailed, SecurityEvents.Subject.Of(user), new { reason = "locked_out" }, success: false);
            if (right)
            {
                await users.UpdateAsync(user);
                return new Outcome(null, await users.GetLockoutEndDateAsync(user));
            }
            // Counting failures would end a deactivation: a lockout that runs out replaces it.
            if (Users.Accounts.IsActive(user))
                await users.AccessFailedAsync(user);
            return Outcome.Invalid;
        }

        // Identity refuses such an account before it looks at the password: the password decides what is said.
        if (Users.Accounts.AwaitsVerification(signIn, user))
        {
            if (!await users.CheckPasswordAsync(user, password ?? ""))
            {
                await users.AccessFailedAsync(user);
                await events.RaiseNowAsync(EventTypes.AuthFailed, SecurityEvents.Subject.Of(user), new { reason = "wrong_password" }, success: false);
                return Outcome.Invalid;
            }
            await events.RaiseNowAsync(EventTypes.AuthFailed, SecurityEvents.Subject.Of(user), new { reason = "email_not_verified" }, success: false);
            await AccountEmails.SendVerificationIfConfiguredAsync(signIn.Context, users, user);
            return new Outcome(null, null, AwaitsVerification: true);
        }

        var result = await signIn.CheckPasswordSignInAsync(user, password ?? "", lockoutOnFailure: true);
        if (!result.Succeeded)
        {
            await events.RaiseNowAsync(EventTypes.AuthFailed, SecurityEvents.Subject.Of(user),
                new { reason = result.IsLockedOut ? "locked_out" : "wrong_password" }, success: false);
            return result.IsLockedOut && await users.CheckPasswordAsync(user, password ?? "")
                ? new Outcome(null, await users.GetLockoutEndDateAsync(user))
                : Outcome.Invalid;
        }

        if (user.PasswordChangeRequired)
            return new Outcome(null, null, MustChangePassword: user);
        await Users.Accounts.RecordLoginAsync(db, user);
        return new Outcome(user, null);
    }
}
