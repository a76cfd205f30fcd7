using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Organizations;
using Identity.Server.Roles;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Server.Users;

/// <summary>The life of an account, the same from every door (registration, the admin API, seeding).</summary>
public static class Accounts
{
    /// <summary>
    /// Anyone may sign up (the seed's /api/v1/auth/register, the registration page, prompt=create) unless
    /// Identity:Registration:Enabled is false: then accounts come only from admins, SCIM and external providers.
    /// </summary>
    public static bool RegistrationOpen(IConfiguration configuration) => configuration.GetValue("Identity:Registration:Enabled", true);

    /// <summary>
    /// Creates <paramref name="user"/> in the organization of its email domain, with the role user plus
    /// <paramref name="roles"/>; the first member of an organization with a verified email becomes its org_admin,
    /// unless <paramref name="claimsOrganization"/> is false: a directory provisioning its people (SCIM) manages the
    /// organization itself, and whichever account it happens to send first must not become its administrator.
    /// </summary>
    public static async Task<IdentityResult> CreateAsync(UserManager<User> users, IdentityDbContext db, SecurityEvents events, User user,
        string? password, IEnumerable<string> roles, bool claimsOrganization = true)
    {
        user.UserName ??= user.Email;
        var organization = await Membership.ForEmailAsync(db, user.Email!);
        user.OrganizationId = organization?.Id;
        // Unverified accounts of the domain do not count: an early squatter must not keep the organization admin-less.
        var firstMember = claimsOrganization && organization is not null && !await db.Users.AnyAsync(u => u.OrganizationId == organization.Id && u.EmailConfirmed);

        var created = password is null ? await users.CreateAsync(user) : await users.CreateAsync(user, password);
        if (!created.Succeeded)
            return created;

        var granted = new HashSet<string>(roles, StringComparer.Ordinal) { BuiltInRoles.User };
        if (firstMember && user.EmailConfirmed)
            granted.Add(BuiltInRoles.OrgAdmin);
        // Stored with the role assignment that completes the account. Every account has the role user, so only the
        // others are role grants worth their own role.assigned.
        var subject = SecurityEvents.Subject.Of(user) with { Roles = granted };
        await events.RaiseAsync(EventTypes.UserCreated, subject, new { roles = granted.Order() });
        foreach (var role in granted.Where(r => r != BuiltInRoles.User).Order(StringComparer.Ordinal))
            await events.RaiseAsync(EventTypes.RoleAssigned, subject,
                role == BuiltInRoles.OrgAdmin && !roles.Contains(role) ? new { role, reason = "first_verified_member" } : new { role, reason = "at_creation" });
        return await users.AddToRolesAsync(user, granted);
    }

    /// <summary>
    /// With this on (Keycloak's "Verify email"), an account signs in only once its email address is verified: new
    /// accounts get their link and no session; a right password for an unverified account is told so and sends the
    /// link again (throttled per account); refresh tokens of such accounts stop working.
    /// </summary>
    public const string RequireVerifiedEmailSetting = "Identity:SignIn:RequireVerifiedEmail";

    /// <summary>The account could sign in but for its unverified address, which the server requires.</summary>
    public static bool AwaitsVerification(SignInManager<User> signIn, User user) =>
        signIn.Options.SignIn.RequireConfirmedEmail && !user.EmailConfirmed;

    /// <summary>
    /// Whether the account may be signed in now, by any grant: it exists, Identity's sign-in rules allow it, and it is
    /// neither locked out nor deactivated (a lockout to the end of time).
    /// </summary>
    public static async Task<bool> MaySignInAsync(SignInManager<User> signIn, User? user) =>
        user is not null && await signIn.CanSignInAsync(user) && !await signIn.UserManager.IsLockedOutAsync(user);

    /// <summary>
    /// Stamps a successful sign-in on the account. A plain column update: concurrent logins of one account must not
    /// trip over its concurrency stamp.
    /// </summary>
    public static async Task RecordLoginAsync(IdentityDbContext db, User user)
    {
        var now = DateTimeOffset.UtcNow;
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.LastLoginAt, now));
        // The tracked copy shows it as stored and unchanged (IsModified = false would put the previous login back).
        var lastLogin = db.Entry(user).Property(u => u.LastLoginAt);
        lastLogin.OriginalValue = lastLogin.CurrentValue = now;
    }

    /// <summary>
    /// Puts a new password on the tracked <paramref name="user"/> (stored by the caller's next save), checked by the same
    /// rules as at registration, with a new security stamp so that browser sessions signed in with the old one end.
    /// </summary>
    public static async Task<IdentityResult> ReplacePasswordAsync(UserManager<User> users, User user, string password)
    {
        var errors = new List<IdentityError>();
        foreach (var validator in users.PasswordValidators)
            errors.AddRange((await validator.ValidateAsync(users, user, password)).Errors);
        if (errors.Count > 0)
            return IdentityResult.Failed([.. errors]);
        users.PasswordValidators.OfType<Account.PasswordHistory>().FirstOrDefault()?.Remember(user);
        user.PasswordHash = users.PasswordHasher.HashPassword(user, password);
        user.SecurityStamp = NewSecurityStamp();
        // A new password is final, whoever set it (the user, a reset link, a directory); an administrator's temporary
        // one is marked again by its caller.
        user.PasswordChangeRequired = false;
        return IdentityResult.Success;
    }

    /// <summary>The account's fields a change to it is audited by, under their API names.</summary>
    static readonly (string Property, string Field)[] AuditedFields =
    [
        (nameof(User.Email), "email"), (nameof(User.Name), "name"), (nameof(User.GivenName), "given_name"), (nameof(User.FamilyName), "family_name"),
        (nameof(User.ExternalId), "external_id"), (nameof(User.EmailConfirmed), "email_verified"), (nameof(User.PasswordHash), "password"),
        (nameof(User.LockoutEnd), "active"), (nameof(User.PasswordChangeRequired), "password_change_required"),
    ];

    /// <summary>
    /// Stores an administrator's or a directory's changes to the tracked <paramref name="user"/>. Only what actually
    /// changed is audited (user.updated), and a request that changes nothing stores and audits nothing. A new password
    /// or a deactivation ends every session of the account: whoever held the old password may hold one.
    /// <paramref name="alsoChanged"/> names changes staged outside the account's row (its attributes), saved and audited with it.
    /// </summary>
    public static async Task<IdentityResult> SaveChangesAsync(UserManager<User> users, IdentityDbContext db, SecurityEvents events,
        Sessions.SessionStore sessions, User user, IReadOnlyList<string>? alsoChanged = null)
    {
        var entry = db.Entry(user);
        var changed = AuditedFields
            .Where(f => entry.Property(f.Property).IsModified && !Equals(entry.Property(f.Property).OriginalValue, entry.Property(f.Property).CurrentValue))
            .Select(f => f.Field).Concat(alsoChanged ?? []).ToList();
        if (changed.Count == 0)
            return IdentityResult.Success;
        await events.RaiseAsync(EventTypes.UserUpdated, SecurityEvents.Subject.Of(user), new { changed, active = IsActive(user) });
        var updated = await users.UpdateAsync(user);
        if (updated.Succeeded && (changed.Contains("password") || (changed.Contains("active") && !IsActive(user))))
            await sessions.RevokeAllAsync(user.Id, except: null);
        return updated;
    }

    /// <summary>
    /// A deactivated account (SCIM active false) is locked out until the end of time: the lockout every sign-in path
    /// already honours (login page, password grant, refresh, federation). A lockout for failed sign-ins ends far sooner.
    /// </summary>
    public static readonly DateTimeOffset DeactivatedAfter = new(9000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static bool IsActive(User user) => !IsDeactivation(user.LockoutEnd);

    /// <summary>Is a lockout that lasts until <paramref name="lockedUntil"/> a deactivation rather than a pause after failed sign-ins?</summary>
    public static bool IsDeactivation(DateTimeOffset? lockedUntil) => lockedUntil > DeactivatedAfter;

    /// <summary>
    /// Locks the tracked <paramref name="user"/> for good, with a new security stamp so that browser sessions end at
    /// their next check. The lock needs lockout enabled, which an account created by an administrator may lack.
    /// </summary>
    public static void Deactivate(User user)
    {
        user.LockoutEnabled = true;
        user.LockoutEnd = DateTimeOffset.MaxValue;
        user.SecurityStamp = NewSecurityStamp();
    }

    static string NewSecurityStamp() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(20));

    public static void Reactivate(User user)
    {
        user.LockoutEnd = null;
        user.AccessFailedCount = 0;
    }

    /// <summary>
    /// Deletes the account and revokes every session and token it had, so nothing it held still works; the apps of
    /// its sessions that asked for it hear so through back-channel logout.
    /// </summary>
    public static async Task DeleteAsync(UserManager<User> users, Sessions.SessionStore sessions, IOpenIddictAuthorizationManager authorizations,
        IOpenIddictTokenManager tokens, SecurityEvents events, User user, string source = "admin")
    {
        await sessions.RevokeAllAsync(user.Id, except: null);
        // What is left: consents (permanent authorizations) and any token outside a session.
        await foreach (var authorization in authorizations.FindBySubjectAsync(user.Id))
            await authorizations.TryRevokeAsync(authorization);
        await foreach (var token in tokens.FindBySubjectAsync(user.Id))
            await tokens.TryRevokeAsync(token);
        await events.RaiseAsync(EventTypes.UserDeleted, SecurityEvents.Subject.Of(user), new { source });
        var result = await users.DeleteAsync(user);
        if (Hosting.ApiErrors.IsConflict(result))
            throw new Microsoft.EntityFrameworkCore.DbUpdateConcurrencyException("The account was changed or deleted by another request at the same time.");
        if (!result.Succeeded)
            throw new InvalidOperationException(string.Join(" ", result.Errors.Select(e => e.Description)));
    }

    /// <summary>
    /// Users may delete their own account (Keycloak's "Delete Account"; off by default, as there): from the account
    /// page or DELETE /api/v1/auth/me, proving it is them again (<see cref="DeleteOwnAsync"/>).
    /// </summary>
    public const string AllowSelfDeletionSetting = "Identity:Accounts:AllowSelfDeletion";

    public static bool SelfDeletionAllowed(IConfiguration configuration) => configuration.GetValue(AllowSelfDeletionSetting, false);

    public enum SelfDeletionOutcome { Deleted, TooManyFailures, Locked, WrongPassword, NeedsRecentSignIn, LastAdmin }

    /// <summary>
    /// The user deletes their own account, as <see cref="DeleteAsync"/> does for an administrator: its password again
    /// when it has one (a wrong one counts like a failed login), else a sign-in of the last minutes
    /// (<see cref="Account.RecentSignIn"/>), so a stolen session or token cannot erase an account. The last
    /// administrator stays: the server would have nobody left to run it.
    /// </summary>
    public static async Task<(SelfDeletionOutcome Outcome, TimeSpan? RetryAfter)> DeleteOwnAsync(HttpContext http, System.Security.Claims.ClaimsPrincipal principal,
        User user, string? password)
    {
        var services = http.RequestServices;
        var users = services.GetRequiredService<UserManager<User>>();
        var failures = services.GetRequiredService<Account.FailedSignIns>();
        var events = services.GetRequiredService<SecurityEvents>();
        if (failures.RetryAfter(http) is { } wait)
            return (SelfDeletionOutcome.TooManyFailures, wait);
        // As for a password change: a lockout stops guesses here too, right or wrong.
        if (await users.IsLockedOutAsync(user))
            return (SelfDeletionOutcome.Locked, null);
        if (await users.HasPasswordAsync(user))
        {
            if (!await IsCurrentPasswordAsync(http, users, failures, events, user, password ?? "", "account_deletion"))
                return (SelfDeletionOutcome.WrongPassword, null);
        }
        else if (!Account.RecentSignIn.Holds(principal, services.GetRequiredService<TimeProvider>()))
            return (SelfDeletionOutcome.NeedsRecentSignIn, null);
        if (await users.IsInRoleAsync(user, BuiltInRoles.Admin) && (await users.GetUsersInRoleAsync(BuiltInRoles.Admin)).Count == 1)
            return (SelfDeletionOutcome.LastAdmin, null);
        await DeleteAsync(users, services.GetRequiredService<Sessions.SessionStore>(), services.GetRequiredService<IOpenIddictAuthorizationManager>(),
            services.GetRequiredService<IOpenIddictTokenManager>(), events, user, source: "self");
        return (SelfDeletionOutcome.Deleted, null);
    }

    public enum PasswordChangeOutcome { Changed, TooManyFailures, Locked, WrongPassword, Refused }

    /// <summary>What came of a password change: when to try again, until when the account is locked, why the new one was refused.</summary>
    public sealed record PasswordChange(PasswordChangeOutcome Outcome, TimeSpan? RetryAfter = null, DateTimeOffset? LockedUntil = null,
        IdentityResult? Refusal = null);

    /// <summary>
    /// The user changes their own password, proving the current one (the API's /api/v1/auth/password and the password
    /// page): wrong guesses count toward the lockout and the address's failure limit like a login's, and are audited;
    /// the new one is checked by the registration rules and stored with a new security stamp, so browser sessions
    /// elsewhere end within a minute. Which app sessions end is the caller's to say: all but the one asking.
    /// </summary>
    public static async Task<PasswordChange> ChangePasswordAsync(HttpContext http, UserManager<User> users, Account.FailedSignIns failures,
        SecurityEvents events, User user, string current, string replacement)
    {
        if (failures.RetryAfter(http) is { } wait)
            return new(PasswordChangeOutcome.TooManyFailures, RetryAfter: wait);
        if (await users.IsLockedOutAsync(user))
            return new(PasswordChangeOutcome.Locked, LockedUntil: await users.GetLockoutEndDateAsync(user));
        if (!await IsCurrentPasswordAsync(http, users, failures, events, user, current, "password_change"))
            return new(PasswordChangeOutcome.WrongPassword);
        if (await ReplacePasswordAsync(users, user, replacement) is { Succeeded: false } refused)
            return new(PasswordChangeOutcome.Refused, Refusal: refused);
        user.AccessFailedCount = 0;
        await events.RaiseAsync(EventTypes.UserUpdated, SecurityEvents.Subject.Of(user), new { changed = new[] { "password" } });
        var updated = await users.UpdateAsync(user);
        return updated.Succeeded ? new(PasswordChangeOutcome.Changed) : new(PasswordChangeOutcome.Refused, Refusal: updated);
    }

    /// <summary>
    /// Whether <paramref name="password"/> is the account's, asked again of a signed-in user (a password change, a
    /// deletion): a wrong one counts like a failed login, toward the lockout and the network's failure limit, and is
    /// audited as from <paramref name="source"/> (stored with the failure count).
    /// </summary>
    static async Task<bool> IsCurrentPasswordAsync(HttpContext http, UserManager<User> users, Account.FailedSignIns failures, SecurityEvents events,
        User user, string password, string source)
    {
        if (await users.CheckPasswordAsync(user, password))
            return true;
        failures.Record(http);
        await events.RaiseAsync(EventTypes.AuthFailed, SecurityEvents.Subject.Of(user), new { reason = "wrong_password", source }, success: false);
        await users.AccessFailedAsync(user);
        return false;
    }

    /// <summary>The account could not be made because its address (or user name, the same) has an account already.</summary>
    public static bool IsTaken(IdentityResult result) =>
        result.Errors.Any(e => e.Code is nameof(IdentityErrorDescriber.DuplicateEmail) or nameof(IdentityErrorDescriber.DuplicateUserName));

    /// <summary>The identity errors as the seed's error: 409 for a taken email or a lost race, 400 naming the broken rule otherwise.</summary>
    public static IResult Problem(HttpContext http, IdentityResult result, string passwordField = "password")
    {
        if (Hosting.ApiErrors.IsConflict(result))
            return Hosting.ApiErrors.Conflict(http);
        var errors = result.Errors.ToList();
        if (IsTaken(result))
            return Hosting.ApiErrors.Result(http, StatusCodes.Status409Conflict, "CONFLICT", "An account with this email already exists.", new { field = "email" });

        var first = errors.FirstOrDefault();
        var field = first?.Code.Contains("Password", StringComparison.Ordinal) == true ? passwordField
            : first?.Code.Contains("Email", StringComparison.Ordinal) == true || first?.Code.Contains("UserName", StringComparison.Ordinal) == true ? "email" : null;
        return Hosting.ApiErrors.Result(http, StatusCodes.Status400BadRequest, "INVALID_REQUEST", first?.Description ?? "The account could not be saved.",
            new { field, rule = first?.Code, reasons = errors.Select(e => e.Description) });
    }
}
