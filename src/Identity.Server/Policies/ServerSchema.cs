using Identity.Policy.Schema;

namespace Identity.Server.Policies;

/// <summary>
/// The Cedar schema of what the server knows: its database's entities (User, Role, Group, Organization), the
/// resource types callers describe (Document), the actions and the request context. Stored policies are validated
/// against it; decisions read entities and context at its types but do not reject other resource types or actions,
/// so a resource server can authorize its own kinds of things with the same engine.
/// </summary>
public static class ServerSchema
{
    public const string Text = """
        // From the identity database. Organizations are named by their email domain: Organization::"acme.com".
        entity Organization = { id: String, domain: String, name: String };
        // Roles are named by their role name: Role::"admin".
        entity Role;
        // Groups (provisioned by SCIM) are named by their display name, Group::"Engineering Team", and a tenant
        // directory's groups with their domain: Group::"acme.com/Engineering Team".
        entity Group in [Organization];
        // A user is User::"<user id>", found by id or by email; its organization, roles and groups are its parents.
        entity User in [Role, Group, Organization] = {
          email: String,
          name?: String,
          email_verified: Bool,
          mfa_enabled: Bool,
          organization?: Organization,
          organization_domain?: String
        };

        // Described by the caller on each request (resource.attributes, or entities).
        entity Document in [Organization] = {
          organization?: Organization,
          organization_domain?: String,
          owner?: String,
          classification?: String
        };

        // Caller-asserted facts: policies may use them, but they never change who the principal is.
        type RequestContext = {
          authenticated?: Bool,
          jwt_valid?: Bool,
          organization_id?: String,
          organization_domain?: String,
          group_memberships?: Set<String>,
          ip_address?: String
        };

        action read, write, create, update, delete, list, share appliesTo {
          principal: [User],
          resource: [Document, Organization, User, Group],
          context: RequestContext
        };
        """;

    public static readonly CedarSchema Schema = CedarSchema.Parse(Text);

    /// <summary>The entity types whose entities come from the database only; a request cannot supply them.</summary>
    public static readonly IReadOnlySet<string> ServerTypes = new HashSet<string>(StringComparer.Ordinal) { "User", "Organization", "Role", "Group" };

    /// <summary>The schema's spelling of <paramref name="type"/> ignoring case (AuthZEN's "user" is User), else as given.</summary>
    public static string Canonical(string type) =>
        Schema.EntityTypes.Keys.FirstOrDefault(t => string.Equals(t, type, StringComparison.OrdinalIgnoreCase)) ?? type;
}
