using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Mfa;

/// <summary>
/// Who must have a second factor (Identity:Mfa:Required, Identity:Mfa:RequiredForRoles), as Keycloak's "Configure
/// OTP" default required action and Auth0's "Require Multi-factor Auth: Always" do: a login by password or external
/// provider without one is held until the user sets up an authenticator app, and the factor cannot be turned off by
/// its user (an administrator's reset still removes it; the next login sets up a new one). A passkey sign-in already
/// has two factors. Sessions that began before the policy keep their tokens until they end, as in Keycloak.
/// </summary>
public sealed class MfaPolicy
{
    public const string Section = "Identity:Mfa";

    /// <summary>Every account.</summary>
    public bool Required { get; set; }

    /// <summary>Accounts with any of these roles (administrators, say).</summary>
    public string[] RequiredForRoles { get; set; } = [];

    public async Task<bool> AppliesToAsync(IdentityDbContext db, string userId)
    {
        if (Required)
            return true;
        if (RequiredForRoles.Length == 0)
            return false;
        // Role names compare as Identity compares them: normalized.
        var normalized = RequiredForRoles.Select(r => r.Trim().ToUpperInvariant()).ToArray();
        return await db.UserRoles.Where(ur => ur.UserId == userId)
            .Join(db.Roles, ur => ur.RoleId, r => r.Id, (_, r) => r.NormalizedName)
            .AnyAsync(name => normalized.Contains(name));
    }
}
