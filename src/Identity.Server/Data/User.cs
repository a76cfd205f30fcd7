using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Data;

public sealed class User : IdentityUser
{
    public string? Name { get; set; }

    /// <summary>The parts of the name, when the directory that provisioned the account (SCIM) knows them.</summary>
    public string? GivenName { get; set; }
    public string? FamilyName { get; set; }

    /// <summary>The provisioning directory's own id for the account (SCIM externalId), case-exact.</summary>
    public string? ExternalId { get; set; }

    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
    public DateTimeOffset? LastLoginAt { get; set; }

    /// <summary>
    /// The password is temporary (Keycloak's "Temporary" password and "Update Password" required action): an
    /// administrator set it, and the next password sign-in must choose a new one on the login page before going on.
    /// </summary>
    public bool PasswordChangeRequired { get; set; }

    /// <summary>
    /// The PBKDF2 hashes of the account's earlier passwords, newest first, as a JSON list: only as many as
    /// Identity:Passwords:History needs (Account/PasswordHistory), none when it is off.
    /// </summary>
    public string? PasswordHistory { get; set; }

    /// <summary>
    /// The organization of the email's domain; null for free-mail addresses. Its admins manage the account, but it
    /// counts as membership (org claims in tokens, the user's parent in policies, the reach of org-scoped roles) only
    /// once <see cref="IdentityUser.EmailConfirmed"/>: anyone can type an address at a company's domain.
    /// </summary>
    public string? OrganizationId { get; set; }
    public Organization? Organization { get; set; }
}

public sealed class Role : IdentityRole
{
    public Role() { }
    public Role(string name) : base(name) { }
    public string? Description { get; set; }

    /// <summary>
    /// The role's permissions apply only within the holder's own organization (org_admin): a user of another
    /// organization is out of reach, as if it did not exist.
    /// </summary>
    public bool OrganizationScoped { get; set; }
}

/// <summary>
/// A group of users, provisioned by an enterprise directory (SCIM) or an administrator: its name goes into the
/// members' tokens (groups claim) and makes them children of Group::"name" in policies.
/// </summary>
public sealed class Group
{
    public string Id { get; set; } = Guid.NewGuid().ToString();
    public required string DisplayName { get; set; }

    /// <summary>Upper-cased <see cref="DisplayName"/>: names are unique regardless of case, and looked up by this index.</summary>
    public required string NormalizedName { get; set; }

    /// <summary>
    /// The organization whose directory provisioned the group (an organization's SCIM client); null for a server-wide
    /// group. Names are unique within an organization, so two tenants may each have their "Engineering".
    /// </summary>
    public string? OrganizationId { get; set; }
    public string? ExternalId { get; set; }
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
    public DateTimeOffset ModifiedAt { get; set; } = DateTimeOffset.UtcNow;
}

public sealed class GroupMember
{
    public required string GroupId { get; set; }
    public required string UserId { get; set; }
}

/// <summary>A tenant: every user whose email is at <see cref="Domain"/>.</summary>
public sealed class Organization
{
    public string Id { get; set; } = Guid.NewGuid().ToString();
    public required string Domain { get; set; }
    public required string Name { get; set; }
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
}
