using System.Text.Json;
using System.Text.Json.Nodes;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Scim;

/// <summary>
/// /scim/v2/Groups: groups of users, with names unique regardless of case. Members are users (no nested groups);
/// a member may be named by id or, as in the product's seed example, by email.
/// </summary>
public static class ScimGroups
{
    public static void Map(RouteGroupBuilder groups)
    {
        groups.MapGet("/", List).WithSummary("List or filter groups");
        groups.MapGet("/{id}", Get).WithSummary("A group");
        groups.MapPost("/", Create).WithSummary("Create a group");
        groups.MapPut("/{id}", Replace).WithSummary("Replace a group and its members");
        groups.MapPatch("/{id}", Patch).WithSummary("Change a group or its members");
        groups.MapDelete("/{id}", Delete).WithSummary("Delete a group");
    }

    static ScimAttributes<Group> Filters(IdentityDbContext db) => new ScimAttributes<Group>()
        .String("id", g => g.Id, caseExact: true)
        .String("displayname", g => g.NormalizedName, upperCased: true)
        .String("externalid", g => g.ExternalId, caseExact: true)
        .DateTime("meta.created", g => g.CreatedAt)
        .DateTime("meta.lastmodified", g => g.ModifiedAt)
        .Reference("members.value", id => g => db.GroupMembers.Any(m => m.GroupId == g.Id && m.UserId == id));

    static async Task<IResult> List(HttpContext http, IdentityDbContext db, string? attributes, string? excludedAttributes)
    {
        var tenant = await ScimTenant.OfAsync(http);
        var groups = db.Groups.AsNoTracking().Where(g => tenant.ServerWide || g.OrganizationId == tenant.OrganizationId);
        return await ScimJson.ListAsync(http.Request, groups, Filters(db), groups => groups.OrderBy(g => g.CreatedAt).ThenBy(g => g.Id),
            page => RenderAsync(http, db, page, WithMembers(attributes, excludedAttributes)));
    }

    /// <summary>The group, if the calling directory reaches it; else null (a 404).</summary>
    static async Task<Group?> FindAsync(HttpContext http, IdentityDbContext db, string id)
    {
        var group = await db.Groups.FindAsync(id);
        return group is not null && (await ScimTenant.OfAsync(http)).Reaches(group) ? group : null;
    }

    static async Task<IResult> Get(HttpContext http, string id, IdentityDbContext db, string? attributes, string? excludedAttributes)
    {
        var group = await FindAsync(http, db, id);
        if (group is null)
            return ScimErrors.NotFound(id);
        return ScimJson.Read(http.Request, (await RenderAsync(http, db, [group], WithMembers(attributes, excludedAttributes)))[0],
            attributes, excludedAttributes);
    }

    /// <summary>412 when the request names a version of the group (If-Match) that is no longer current.</summary>
    static Task<IResult?> StaleAsync(HttpContext http, IdentityDbContext db, Group group) =>
        ScimJson.PreconditionFailedAsync(http.Request, async () => (await RenderAsync(http, db, [group], withMembers: true))[0]);

    static async Task<IResult> Create(HttpContext http, IdentityDbContext db, SecurityEvents events)
    {
        var body = await ScimJson.ReadObjectAsync(http.Request);
        var name = CheckedName(body.Get("displayName"));
        var tenant = await ScimTenant.OfAsync(http);
        var group = new Group
        {
            DisplayName = name, NormalizedName = name.ToUpperInvariant(), ExternalId = ExternalId(body.Get("externalId")), OrganizationId = tenant.OrganizationId,
        };
        var members = await ResolveAsync(db, tenant, body.Get("members"));
        if (await db.Groups.AnyAsync(g => g.OrganizationId == group.OrganizationId && g.NormalizedName == group.NormalizedName))
            return Taken(name);

        db.Groups.Add(group);
        db.GroupMembers.AddRange(members.Select(userId => new GroupMember { GroupId = group.Id, UserId = userId }));
        await events.RaiseAsync(EventTypes.GroupCreated, null, new { group = Describe(group), members = members.Order(StringComparer.Ordinal) });
        if (!await TrySaveAsync(db))
            return Taken(name);
        http.Response.Headers.Location = ScimApi.Location(http, "Groups", group.Id);
        return ScimJson.Resource((await RenderAsync(http, db, [group], withMembers: true))[0], StatusCodes.Status201Created);
    }

    static async Task<IResult> Replace(HttpContext http, string id, IdentityDbContext db, SecurityEvents events)
    {
        var group = await FindAsync(http, db, id);
        if (group is null)
            return ScimErrors.NotFound(id);
        if (await StaleAsync(http, db, group) is { } failed)
            return failed;
        var body = await ScimJson.ReadObjectAsync(http.Request);
        var draft = new Draft(CheckedName(body.Get("displayName")), ExternalId(body.Get("externalId")),
            await ResolveAsync(db, await ScimTenant.OfAsync(http), body.Get("members")));
        return await SaveAsync(http, db, events, group, draft);
    }

    static async Task<IResult> Patch(HttpContext http, string id, IdentityDbContext db, SecurityEvents events)
    {
        var group = await FindAsync(http, db, id);
        if (group is null)
            return ScimErrors.NotFound(id);
        if (await StaleAsync(http, db, group) is { } failed)
            return failed;
        var operations = ScimPatch.Operations(await ScimJson.ReadObjectAsync(http.Request));
        var draft = new Draft(group.DisplayName, group.ExternalId, await MembersOfAsync(db, group.Id));
        var tenant = await ScimTenant.OfAsync(http);
        foreach (var operation in operations)
            await ApplyAsync(db, tenant, draft, operation);
        return await SaveAsync(http, db, events, group, draft);
    }

    static async Task<IResult> Delete(HttpContext http, string id, IdentityDbContext db, SecurityEvents events)
    {
        var group = await FindAsync(http, db, id);
        if (group is null)
            return ScimErrors.NotFound(id);
        if (await StaleAsync(http, db, group) is { } failed)
            return failed;
        db.Groups.Remove(group);
        await events.RaiseAsync(EventTypes.GroupDeleted, null, new { group = Describe(group) });
        await db.SaveChangesAsync();
        return Results.NoContent();
    }

    /// <summary>A group as a request leaves it: its name, external id and member user ids.</summary>
    sealed record Draft(string DisplayName, string? ExternalId, HashSet<string> Members)
    {
        public string DisplayName { get; set; } = DisplayName;
        public string? ExternalId { get; set; } = ExternalId;
    }

    static async Task ApplyAsync(IdentityDbContext db, ScimTenant tenant, Draft draft, ScimPatch.Operation operation)
    {
        if (operation.Path is null)
        {
            if (operation.Kind == ScimPatch.Remove)
                throw new ScimException(400, ScimErrors.NoTarget, "A remove operation needs a path.");
            if (operation.Value is not JsonObject values)
                throw new ScimException(400, ScimErrors.InvalidValue, "An operation without a path needs an object as its value.");
            foreach (var (key, value) in values)
                await SetAsync(db, tenant, draft, operation.Kind, ScimPaths.Normalize(key), value);
            return;
        }

        var path = operation.Path;
        if (operation.Kind != ScimPatch.Remove)
        {
            if (path.Filter is not null)
                throw new ScimException(400, ScimErrors.InvalidPath, "Only a remove operation may filter members.");
            await SetAsync(db, tenant, draft, operation.Kind, path.Attribute, operation.Value);
            return;
        }
        switch (path.Attribute)
        {
            case "members" when path.Filter is { } filter:
                draft.Members.RemoveWhere(member => Matches(filter, member));
                break;
            case "members" when operation.Value is null:
                draft.Members.Clear();
                break;
            case "members":
                // Okta removes members by listing them as the value.
                draft.Members.ExceptWith(await ResolveAsync(db, tenant, operation.Value, mustExist: false));
                break;
            case "externalid":
                draft.ExternalId = null;
                break;
            case "displayname":
                throw new ScimException(400, ScimErrors.InvalidValue, "displayName is required: it cannot be removed.");
        }
    }

    static async Task SetAsync(IdentityDbContext db, ScimTenant tenant, Draft draft, string kind, string attribute, JsonNode? value)
    {
        switch (attribute)
        {
            case "displayname":
                draft.DisplayName = CheckedName(value);
                break;
            case "externalid":
                draft.ExternalId = ExternalId(value);
                break;
            case "members" when kind == ScimPatch.Add:
                draft.Members.UnionWith(await ResolveAsync(db, tenant, value));
                break;
            case "members":
                draft.Members.Clear();
                draft.Members.UnionWith(await ResolveAsync(db, tenant, value));
                break;
        }
    }

    /// <summary>Does <paramref name="member"/> satisfy a members[...] filter? Only value (the user id) is known of a member.</summary>
    static bool Matches(ScimFilter filter, string member) => filter switch
    {
        ScimFilter.And and => Matches(and.Left, member) && Matches(and.Right, member),
        ScimFilter.Or or => Matches(or.Left, member) || Matches(or.Right, member),
        ScimFilter.Not not => !Matches(not.Inner, member),
        ScimFilter.Compare { Path: "value", Operator: "eq" or "ne" } compare when compare.Value is { ValueKind: JsonValueKind.String } value =>
            (value.GetString() == member) == (compare.Operator == "eq"),
        _ => throw new ScimException(400, ScimErrors.InvalidFilter, "A members filter may compare value with eq or ne only."),
    };

    static async Task<IResult> SaveAsync(HttpContext http, IdentityDbContext db, SecurityEvents events, Group group, Draft draft)
    {
        var normalized = draft.DisplayName.ToUpperInvariant();
        if (normalized != group.NormalizedName &&
            await db.Groups.AnyAsync(g => g.OrganizationId == group.OrganizationId && g.NormalizedName == normalized && g.Id != group.Id))
            return Taken(draft.DisplayName);

        var current = await MembersOfAsync(db, group.Id);
        var added = draft.Members.Except(current).Order(StringComparer.Ordinal).ToList();
        var removed = current.Except(draft.Members).Order(StringComparer.Ordinal).ToList();
        var changed = new List<string>();
        if (draft.DisplayName != group.DisplayName)
            changed.Add("display_name");
        if (draft.ExternalId != group.ExternalId)
            changed.Add("external_id");
        if (added.Count > 0 || removed.Count > 0)
            changed.Add("members");
        if (changed.Count > 0)
        {
            group.DisplayName = draft.DisplayName;
            group.NormalizedName = normalized;
            group.ExternalId = draft.ExternalId;
            group.ModifiedAt = DateTimeOffset.UtcNow;
            db.GroupMembers.AddRange(added.Select(userId => new GroupMember { GroupId = group.Id, UserId = userId }));
            if (removed.Count > 0)
                db.GroupMembers.RemoveRange(await db.GroupMembers.Where(m => m.GroupId == group.Id && removed.Contains(m.UserId)).ToListAsync());
            await events.RaiseAsync(EventTypes.GroupUpdated, null, new { group = Describe(group), changed, added, removed });
            // Another request saved first: the same new name, or the same new member.
            if (!await TrySaveAsync(db))
                return ScimErrors.Result(409, ScimErrors.Uniqueness,
                    $"Another change to the group came first (its name '{draft.DisplayName}' or one of its new members): read it and try again.");
        }
        return ScimJson.Resource((await RenderAsync(http, db, [group], withMembers: true))[0]);
    }

    static object Describe(Group group) => new { id = group.Id, display_name = group.DisplayName };

    static IResult Taken(string name) => ScimErrors.Result(409, ScimErrors.Uniqueness, $"A group named '{name}' already exists.");

    /// <summary>False when a unique index refused the change: another request took the name, or added the member, meanwhile.</summary>
    static async Task<bool> TrySaveAsync(IdentityDbContext db)
    {
        try
        {
            await db.SaveChangesAsync();
            return true;
        }
        catch (DbUpdateException) when (db.ChangeTracker.Entries<Group>().Any())
        {
            db.ChangeTracker.Clear();
            return false;
        }
    }

    static string CheckedName(JsonNode? value)
    {
        var name = ScimJson.String(value, "displayName")?.Trim();
        if (string.IsNullOrEmpty(name))
            throw new ScimException(400, ScimErrors.InvalidValue, "displayName is required.");
        if (FreeText.Problem(name, "displayName", 256) is { } problem)
            throw new ScimException(400, ScimErrors.InvalidValue, problem);
        return name;
    }

    static string? ExternalId(JsonNode? value)
    {
        var externalId = ScimJson.String(value, "externalId");
        if (FreeText.Problem(externalId, "externalId", 256) is { } problem)
            throw new ScimException(400, ScimErrors.InvalidValue, problem);
        return externalId;
    }

    static async Task<HashSet<string>> MembersOfAsync(IdentityDbContext db, string groupId) =>
        (await db.GroupMembers.Where(m => m.GroupId == groupId).Select(m => m.UserId).ToListAsync()).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The user ids a members value names: objects with a value (a user id), or strings naming a user by id or email.
    /// Unknown users, and users out of the directory's reach, are refused (<paramref name="mustExist"/>) so that a typo
    /// does not pass silently.
    /// </summary>
    static async Task<HashSet<string>> ResolveAsync(IdentityDbContext db, ScimTenant tenant, JsonNode? value, bool mustExist = true)
    {
        var named = new List<string>();
        foreach (var member in value switch { null => [], JsonArray array => array.ToList(), _ => [value] })
        {
            if (member is JsonObject reference)
            {
                if (ScimJson.String(reference.Get("type"), "members.type") is { } type && !type.Equals("User", StringComparison.OrdinalIgnoreCase))
                    throw new ScimException(400, ScimErrors.InvalidValue, "Members are users: groups cannot be nested.");
                named.Add(ScimJson.String(reference.Get("value"), "members.value")
                    ?? throw new ScimException(400, ScimErrors.InvalidValue, "Each member needs a value: the user's id."));
            }
            else
                named.Add(ScimJson.String(member, "members") ?? throw new ScimException(400, ScimErrors.InvalidValue, "A member cannot be null."));
        }
        if (named.Count == 0)
            return [];

        var normalized = named.Select(n => n.ToUpperInvariant()).ToList();
        var found = await db.Users.AsNoTracking()
            .Where(u => named.Contains(u.Id) || normalized.Contains(u.NormalizedEmail!))
            .Where(u => tenant.ServerWide || u.OrganizationId == tenant.OrganizationId)
            .Select(u => new { u.Id, u.NormalizedEmail }).ToListAsync();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in named)
        {
            var user = found.FirstOrDefault(u => u.Id == name) ?? found.FirstOrDefault(u => u.NormalizedEmail == name.ToUpperInvariant());
            if (user is not null)
                ids.Add(user.Id);
            else if (mustExist)
                throw new ScimException(400, ScimErrors.InvalidValue, $"There is no user '{name}'.");
        }
        return ids;
    }

    static bool WithMembers(string? attributes, string? excludedAttributes) =>
        ScimJson.Project(new JsonObject { ["members"] = true }, attributes, excludedAttributes).ContainsKey("members");

    /// <summary>Several groups, with their members (one query whatever their number) unless the request leaves them out.</summary>
    static async Task<List<JsonObject>> RenderAsync(HttpContext http, IdentityDbContext db, IReadOnlyList<Group> groups, bool withMembers)
    {
        var ids = groups.Select(g => g.Id).ToList();
        var members = !withMembers ? [] : await (
            from member in db.GroupMembers
            join user in db.Users on member.UserId equals user.Id
            where ids.Contains(member.GroupId)
            orderby user.Email
            select new { member.GroupId, user.Id, user.Email }).ToListAsync();
        return groups.Select(group =>
        {
            var resource = new JsonObject
            {
                ["schemas"] = new JsonArray(ScimSchemas.Group),
                ["id"] = group.Id,
                ["displayName"] = group.DisplayName,
            };
            if (group.ExternalId is not null)
                resource["externalId"] = group.ExternalId;
            if (withMembers)
                resource["members"] = new JsonArray([.. members.Where(m => m.GroupId == group.Id).Select(m => new JsonObject
                {
                    ["value"] = m.Id, ["display"] = m.Email, ["type"] = "User", ["$ref"] = ScimApi.Location(http, "Users", m.Id),
                })]);
            resource["meta"] = ScimJson.Meta("Group", group.CreatedAt, group.ModifiedAt, ScimApi.Location(http, "Groups", group.Id));
            // The version covers the members: a group read without them has none.
            return withMembers ? ScimJson.Versioned(resource) : resource;
        }).ToList();
    }
}
