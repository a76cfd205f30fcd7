namespace Identity.Server.Roles;

/// <summary>
/// The permission catalogue. Roles grant permissions (stored as role claims of type <see cref="ClaimType"/>);
/// APIs require a permission, never a role name, so an operator can compose roles freely.
/// </summary>
public static class Permissions
{
    public const string ClaimType = "permission";

    public const string ReadProfile = "read:profile";
    public const string WriteProfile = "write:profile";
    public const string UsersRead = "users:read";
    public const string UsersWrite = "users:write";
    public const string RolesRead = "roles:read";
    public const string RolesWrite = "roles:write";
    public const string AuditRead = "audit:read";
    public const string WebhooksRead = "webhooks:read";
    public const string WebhooksWrite = "webhooks:write";
    public const string PoliciesRead = "policies:read";
    public const string PoliciesWrite = "policies:write";
    public const string ClientsRead = "clients:read";
    public const string ClientsWrite = "clients:write";

    public static readonly IReadOnlyDictionary<string, string> Catalogue = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [ReadProfile] = "Read one's own profile",
        [WriteProfile] = "Change one's own profile",
        [UsersRead] = "List and read user accounts",
        [UsersWrite] = "Create, change and delete user accounts and their roles",
        [RolesRead] = "List roles and permissions",
        [RolesWrite] = "Create roles",
        [AuditRead] = "Read the audit log",
        [WebhooksRead] = "List webhook subscriptions and their deliveries",
        [WebhooksWrite] = "Create, change and delete webhook subscriptions",
        [PoliciesRead] = "Read authorization policies and their schema, and use the policy test bench",
        [PoliciesWrite] = "Create, change and delete authorization policies",
        [ClientsRead] = "List OAuth clients",
        [ClientsWrite] = "Register, change and delete OAuth clients and replace their secrets",
    };
}

/// <summary>The roles every installation has, with what they grant.</summary>
public static class BuiltInRoles
{
    public const string Admin = "admin";
    public const string User = "user";
    public const string OrgAdmin = "org_admin";

    public sealed record Definition(string Name, string Description, bool OrganizationScoped, string[] Permissions);

    public static readonly Definition[] All =
    [
        new(Admin, "Administers the whole server", false, [.. Roles.Permissions.Catalogue.Keys]),
        new(User, "Every account", false, [Roles.Permissions.ReadProfile, Roles.Permissions.WriteProfile]),
        new(OrgAdmin, "Administers the users of their own organization", true,
            // audit:read here shows the organization's own entries only (see AuditApi).
            [Roles.Permissions.UsersRead, Roles.Permissions.UsersWrite, Roles.Permissions.RolesRead, Roles.Permissions.AuditRead]),
    ];
}
