using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Policy;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Values;
using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Policies;

/// <summary>
/// One authorization question as a caller asks it. <see cref="ResourceAttributes"/>, <see cref="Context"/> and
/// <see cref="Entities"/> are raw JSON (Undefined when absent), read at the server schema's types.
/// </summary>
public sealed record DecisionRequest(EntityUid Principal, EntityUid Action, EntityUid Resource,
    JsonElement ResourceAttributes = default, JsonElement Context = default, JsonElement Entities = default);

/// <summary>
/// Answers a <see cref="DecisionRequest"/> with the active policies. The database is the only source of users,
/// organizations and roles: a request may describe its resource and add entities of other types, and its context
/// is visible to policies as <c>context</c>, but it cannot add, replace or re-parent a User, Organization, Role or
/// Group. Bad input throws <see cref="PolicyFormatException"/>.
/// </summary>
public static partial class Decisions
{
    // The seed's ids name their tenant: "org-acme-doc-001" belongs to the organization whose domain's first label is acme.
    [GeneratedRegex("^org-([a-z0-9]+)-", RegexOptions.IgnoreCase)]
    private static partial Regex SeedOrganizationId();

    static readonly JsonElement NoEntities = JsonDocument.Parse("[]").RootElement;

    // The key under which DirectoryFacts remembers which organization a seed-style id prefix names.
    const string SeedPrefix = "seed id prefix";

    public static async Task<AuthorizationResult> DecideAsync(DecisionRequest request, IdentityDbContext db, ActivePolicies active, DirectoryFacts facts,
        CancellationToken cancellationToken)
    {
        // Only users act, and they come from the database: any other principal (a role, an organization, an entity the
        // caller made a child of Role::"admin") would escape tenant-isolation, which is about users.
        if (request.Principal.Type != "User")
            throw new PolicyFormatException($"the principal must be a User, not {request.Principal.Type}");
        var schema = ServerSchema.Schema;
        var requestEntities = EntityJson.ParseEntities(request.Entities.ValueKind == JsonValueKind.Undefined ? NoEntities : request.Entities, schema);
        if (requestEntities.All.FirstOrDefault(e => ServerSchema.ServerTypes.Contains(e.Uid.Type)) is { } forged)
            throw new PolicyFormatException($"{forged.Uid} comes from the identity database; a request cannot supply {forged.Uid.Type} entities");
        var context = EntityJson.ParseContext(request.Context, schema, request.Action);

        var entities = new Dictionary<EntityUid, Entity>();
        var principal = await LoadAsync(db, facts, request.Principal, entities, cancellationToken);
        if (principal is null)
            return Unknown(request.Principal);
        var resource = await LoadAsync(db, facts, request.Resource, entities, cancellationToken);
        if (resource is null)
            return Unknown(request.Resource);
        if (ServerSchema.ServerTypes.Contains(resource.Type) && request.ResourceAttributes.ValueKind != JsonValueKind.Undefined)
            throw new PolicyFormatException($"the attributes of a {resource.Type} come from the identity database; send none");

        foreach (var entity in requestEntities.All)
            entities.TryAdd(entity.Uid, entity);
        if (requestEntities.TryGet(resource, out _))
        {
            if (request.ResourceAttributes.ValueKind != JsonValueKind.Undefined)
                throw new PolicyFormatException($"{resource} is in entities: give its attributes there, not in resource.attributes");
        }
        else if (!ServerSchema.ServerTypes.Contains(resource.Type))
            entities[resource] = await DescribeResourceAsync(db, facts, resource, request.ResourceAttributes, cancellationToken);

        var policies = await active.GetAsync(db, cancellationToken);
        return Authorizer.IsAuthorized(new Request(principal, request.Action, resource, context), new EntityStore(entities.Values), policies);
    }

    static AuthorizationResult Unknown(EntityUid uid) =>
        new(Decision.Deny, [], [new PolicyError("", $"{uid} does not exist")]);

    /// <summary>
    /// Adds a User or Organization from the database (with the user's organization and roles) and returns its
    /// canonical uid (a user is named by id even when asked for by email); null if there is no such one. Other
    /// types are returned as they are.
    /// </summary>
    static Task<EntityUid?> LoadAsync(IdentityDbContext db, DirectoryFacts facts, EntityUid uid, Dictionary<EntityUid, Entity> entities,
        CancellationToken cancellationToken) =>
        uid.Type is "User" or "Organization"
            ? facts.GetAsync(uid, entities, loaded => ReadAsync(db, uid, loaded, cancellationToken))
            : Task.FromResult<EntityUid?>(uid);

    static async Task<EntityUid?> ReadAsync(IdentityDbContext db, EntityUid uid, Dictionary<EntityUid, Entity> entities, CancellationToken cancellationToken)
    {
        switch (uid.Type)
        {
            case "User":
            {
                var normalized = uid.Id.ToUpperInvariant();
                var user = await db.Users.AsNoTracking()
                    .Where(u => u.Id == uid.Id || u.NormalizedEmail == normalized)
                    .Select(u => new
                    {
                        u.Id, u.Email, u.Name, u.EmailConfirmed, u.Organization,
                        Mfa = db.MfaFactors.Any(f => f.UserId == u.Id && f.Enabled),
                        Roles = db.UserRoles.Where(ur => ur.UserId == u.Id).Join(db.Roles, ur => ur.RoleId, r => r.Id, (_, r) => r.Name).ToList(),
                        // A tenant's group is named with its domain: two tenants' "Engineering" must not be one policy entity.
                        Groups = db.GroupMembers.Where(m => m.UserId == u.Id).Join(db.Groups, m => m.GroupId, g => g.Id, (_, g) => g.OrganizationId == null
                            ? g.DisplayName
                            : db.Organizations.Where(o => o.Id == g.OrganizationId).Select(o => o.Domain + "/" + g.DisplayName).First()).ToList(),
                    })
                    .FirstOrDefaultAsync(cancellationToken);
                if (user is null)
                    return null;

                var attributes = new Dictionary<string, Value>(StringComparer.Ordinal)
                {
                    ["email"] = new StringValue(user.Email ?? ""),
                    ["email_verified"] = BoolValue.Of(user.EmailConfirmed),
                    ["mfa_enabled"] = BoolValue.Of(user.Mfa),
                };
                if (user.Name is not null)
                    attributes["name"] = new StringValue(user.Name);
                var parents = user.Roles.Where(r => r is not null).Select(r => new EntityUid("Role", r!)).ToList();
                parents.AddRange(user.Groups.Select(g => new EntityUid("Group", g)));
                foreach (var parent in parents)
                    entities.TryAdd(parent, new Entity(parent));
                // Membership needs a verified email (User.OrganizationId), or anyone could register into a tenant.
                if (user.EmailConfirmed && user.Organization is { } organization)
                {
                    var org = AddOrganization(organization, entities);
                    attributes["organization"] = org;
                    attributes["organization_domain"] = new StringValue(organization.Domain);
                    parents.Add(org);
                }
                var canonical = new EntityUid("User", user.Id);
                entities[canonical] = new Entity(canonical, attributes, parents);
                return canonical;
            }
            case "Organization":
            {
                var organization = await db.Organizations.AsNoTracking().FirstOrDefaultAsync(o => o.Domain == uid.Id || o.Id == uid.Id, cancellationToken);
                return organization is null ? null : AddOrganization(organization, entities);
            }
            default:
                return uid;
        }
    }

    static EntityUid AddOrganization(Organization organization, Dictionary<EntityUid, Entity> entities)
    {
        var uid = new EntityUid("Organization", organization.Domain);
        entities.TryAdd(uid, new Entity(uid, new Dictionary<string, Value>(StringComparer.Ordinal)
        {
            ["id"] = new StringValue(organization.Id),
            ["domain"] = new StringValue(organization.Domain),
            ["name"] = new StringValue(organization.Name),
        }));
        return uid;
    }

    /// <summary>
    /// The resource from the caller's attributes. Its organization, if any, becomes its parent and its
    /// <c>organization</c>/<c>organization_domain</c> attributes: given as <c>organization</c> (an Organization
    /// reference) or <c>organization_domain</c>, or else read from a seed-style id (<c>org-acme-...</c>: the one
    /// organization whose domain starts with <c>acme.</c>).
    /// </summary>
    static async Task<Entity> DescribeResourceAsync(IdentityDbContext db, DirectoryFacts facts, EntityUid resource, JsonElement json, CancellationToken cancellationToken)
    {
        var attributes = new Dictionary<string, Value>(StringComparer.Ordinal);
        if (json.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            if (json.ValueKind != JsonValueKind.Object)
                throw new PolicyFormatException("resource.attributes must be an object");
            ServerSchema.Schema.EntityTypes.TryGetValue(resource.Type, out var definition);
            foreach (var property in json.EnumerateObject())
            {
                var type = definition is not null && definition.Attributes.Attributes.TryGetValue(property.Name, out var declared) ? declared.Type : null;
                attributes[property.Name] = EntityJson.ParseValue(property.Value, type);
            }
        }

        var domain = attributes.GetValueOrDefault("organization") switch
        {
            EntityUid { Type: "Organization" } org => org.Id,
            StringValue named => named.Value,
            _ => (attributes.GetValueOrDefault("organization_domain") as StringValue)?.Value,
        };
        if (domain is null && SeedOrganizationId().Match(resource.Id) is { Success: true } match)
        {
            var prefix = match.Groups[1].Value.ToLowerInvariant() + ".";
            domain = (await facts.GetAsync(new EntityUid(SeedPrefix, prefix), [], async _ =>
            {
                var candidates = await db.Organizations.AsNoTracking().Where(o => o.Domain.StartsWith(prefix)).Select(o => o.Domain).Take(2).ToListAsync(cancellationToken);
                return candidates.Count == 1 ? new EntityUid("Organization", candidates[0]) : null;
            }))?.Id;
        }
        if (domain is null)
            return new Entity(resource, attributes);

        domain = domain.ToLowerInvariant();
        var organization = new EntityUid("Organization", domain);
        attributes["organization"] = organization;
        attributes["organization_domain"] = new StringValue(domain);
        return new Entity(resource, attributes, [organization]);
    }
}
