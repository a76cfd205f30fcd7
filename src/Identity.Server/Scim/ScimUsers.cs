using System.Net.Mail;
using System.Text.Json.Nodes;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Organizations;
using Identity.Server.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Server.Scim;

/// <summary>
/// /scim/v2/Users: the directory's view of this server's accounts. An account here is keyed by its email, so
/// userName is the email address (and the work email is the same address). A directory vouches for its users'
/// addresses: provisioned accounts are verified. Deactivating (active false) locks the account for good and ends
/// its sessions; the same lock stops sign-in on every path (login page, password grant, refresh, federation).
/// </summary>
public static class ScimUsers
{
    public static void Map(RouteGroupBuilder users)
    {
        users.MapGet("/", List).WithSummary("List or filter users");
        users.MapGet("/{id}", Get).WithSummary("A user");
        users.MapPost("/", Create).WithSummary("Provision a user");
        users.MapPut("/{id}", Replace).WithSummary("Replace a user");
        users.MapPatch("/{id}", Patch).WithSummary("Change a user (add, replace, remove operations)");
        users.MapDelete("/{id}", Delete).WithSummary("Delete a user and revoke their tokens");
    }

    static ScimAttributes<User> Filters(IdentityDbContext db) => new ScimAttributes<User>()
        .String("id", u => u.Id, caseExact: true)
        .String("username", u => u.NormalizedEmail, upperCased: true)
        .String("emails.value", u => u.NormalizedEmail, upperCased: true)
        .String("emails.type", u => "work")
        .Boolean("emails.primary", u => true)
        .String("externalid", u => u.ExternalId, caseExact: true)
        .String("displayname", u => u.Name)
        .String("name.formatted", u => u.Name)
        .String("name.givenname", u => u.GivenName)
        .String("name.familyname", u => u.FamilyName)
        .Boolean("active", u => !(u.LockoutEnd > Accounts.DeactivatedAfter))
        .DateTime("meta.created", u => u.CreatedAt)
        .Reference("groups.value", id => u => db.GroupMembers.Any(m => m.UserId == u.Id && m.GroupId == id));

    static async Task<IResult> List(HttpContext http, IdentityDbContext db)
    {
        var tenant = await ScimTenant.OfAsync(http);
        var users = db.Users.AsNoTracking().Where(u => tenant.ServerWide || u.OrganizationId == tenant.OrganizationId);
        return await ScimJson.ListAsync(http.Request, users, Filters(db), users => users.OrderBy(u => u.CreatedAt).ThenBy(u => u.Id),
            page => RenderAsync(http, db, page));
    }

    static async Task<IResult> Get(HttpContext http, string id, IdentityDbContext db, string? attributes, string? excludedAttributes)
    {
        var user = await FindAsync(http, db, id, forChange: false);
        if (user is null)
            return ScimErrors.NotFound(id);
        return ScimJson.Read(http.Request, await RenderAsync(http, db, user), attributes, excludedAttributes);
    }

    /// <summary>The user, if the calling directory reaches it (else null: a 404); for a change, also one it may change.</summary>
    static async Task<User?> FindAsync(HttpContext http, IdentityDbContext db, string id, bool forChange = true)
    {
        var tenant = await ScimTenant.OfAsync(http);
        var user = await db.Users.FindAsync(id);
        if (user is null || !tenant.Reaches(user))
            return null;
        if (forChange)
            await tenant.CheckChangeableAsync(db, user);
        return user;
    }

    /// <summary>412 when the request names a version of the user (If-Match) that is no longer current.</summary>
    static Task<IResult?> StaleAsync(HttpContext http, IdentityDbContext db, User user) =>
        ScimJson.PreconditionFailedAsync(http.Request, () => RenderAsync(http, db, user));

    static async Task<IResult> Create(HttpContext http, IdentityDbContext db, UserManager<User> users, SecurityEvents events, UserAttributes attributes)
    {
        var draft = Draft.Of(await ScimJson.ReadObjectAsync(http.Request), attributes);
        var email = draft.CheckedEmail();
        (await ScimTenant.OfAsync(http)).CheckAddress(email);
        draft.CheckNames();
        var user = new User
        {
            Email = email, Name = draft.Name, GivenName = draft.GivenName, FamilyName = draft.FamilyName, ExternalId = draft.ExternalId,
            EmailConfirmed = true,
        };
        if (!draft.Active)
            Accounts.Deactivate(user);
        var created = await Accounts.CreateAsync(users, db, events, user, draft.Password, [], claimsOrganization: false);
        if (!created.Succeeded)
            return Refusal(created);
        await UserAttributes.StageAsync(db, user.Id, draft.AttributeChanges());
        await db.SaveChangesAsync();
        var resource = await RenderAsync(http, db, user);
        http.Response.Headers.Location = ScimApi.Location(http, "Users", user.Id);
        return ScimJson.Resource(resource, StatusCodes.Status201Created);
    }

    static async Task<IResult> Replace(HttpContext http, string id, IdentityDbContext db, UserManager<User> users, SecurityEvents events,
        Sessions.SessionStore sessions, UserAttributes attributes)
    {
        var user = await FindAsync(http, db, id);
        if (user is null)
            return ScimErrors.NotFound(id);
        if (await StaleAsync(http, db, user) is { } failed)
            return failed;
        return await SaveAsync(http, db, users, events, sessions, user, Draft.Of(await ScimJson.ReadObjectAsync(http.Request), attributes));
    }

    static async Task<IResult> Patch(HttpContext http, string id, IdentityDbContext db, UserManager<User> users, SecurityEvents events,
        Sessions.SessionStore sessions, UserAttributes attributes)
    {
        var user = await FindAsync(http, db, id);
        if (user is null)
            return ScimErrors.NotFound(id);
        if (await StaleAsync(http, db, user) is { } failed)
            return failed;
        var draft = Draft.From(user, attributes, (await attributes.OfAsync(db, [user.Id]))[user.Id]);
        foreach (var operation in ScimPatch.Operations(await ScimJson.ReadObjectAsync(http.Request)))
            draft.Apply(operation);
        draft.Finish();
        return await SaveAsync(http, db, users, events, sessions, user, draft);
    }

    static async Task<IResult> Delete(HttpContext http, string id, IdentityDbContext db, UserManager<User> users, Sessions.SessionStore sessions,
        IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, SecurityEvents events)
    {
        var user = await FindAsync(http, db, id);
        if (user is null)
            return ScimErrors.NotFound(id);
        if (await StaleAsync(http, db, user) is { } failed)
            return failed;
        await Accounts.DeleteAsync(users, sessions, authorizations, tokens, events, user);
        return Results.NoContent();
    }

    /// <summary>Puts <paramref name="draft"/> on the account; audits what changed and ends sessions a deactivation or new password must end.</summary>
    static async Task<IResult> SaveAsync(HttpContext http, IdentityDbContext db, UserManager<User> users, SecurityEvents events,
        Sessions.SessionStore sessions, User user, Draft draft)
    {
        var email = draft.CheckedEmail();
        (await ScimTenant.OfAsync(http)).CheckAddress(email);
        draft.CheckNames();
        if (!string.Equals(email, user.Email, StringComparison.OrdinalIgnoreCase))
        {
            user.Email = user.UserName = email;
            user.OrganizationId = (await Membership.ForEmailAsync(db, email))?.Id;
        }
        else if (email != user.Email)
            user.Email = user.UserName = email;
        user.Name = draft.Name;
        user.GivenName = draft.GivenName;
        user.FamilyName = draft.FamilyName;
        user.ExternalId = draft.ExternalId;
        var wasActive = Accounts.IsActive(user);
        if (wasActive && !draft.Active)
            Accounts.Deactivate(user);
        else if (!wasActive && draft.Active)
            Accounts.Reactivate(user);
        if (draft.Password is not null && await Accounts.ReplacePasswordAsync(users, user, draft.Password) is { Succeeded: false } refused)
            return Refusal(refused);

        var saved = await Accounts.SaveChangesAsync(users, db, events, sessions, user, await UserAttributes.StageAsync(db, user.Id, draft.AttributeChanges()));
        return saved.Succeeded ? ScimJson.Resource(await RenderAsync(http, db, user)) : Refusal(saved);
    }

    static IResult Refusal(IdentityResult result)
    {
        if (Hosting.ApiErrors.IsConflict(result))
            return ScimErrors.Result(409, null, Hosting.ApiErrors.ConflictMessage);
        var errors = result.Errors.ToList();
        if (errors.Any(e => e.Code is nameof(IdentityErrorDescriber.DuplicateEmail) or nameof(IdentityErrorDescriber.DuplicateUserName)))
            return ScimErrors.Result(409, ScimErrors.Uniqueness, "An account with this userName already exists.");
        return ScimErrors.Result(400, ScimErrors.InvalidValue, string.Join(" ", errors.Select(e => e.Description)));
    }

    static async Task<JsonObject> RenderAsync(HttpContext http, IdentityDbContext db, User user) => (await RenderAsync(http, db, [user]))[0];

    /// <summary>Several users with their groups and provisioned attributes, in one query for each whatever their number.</summary>
    static async Task<List<JsonObject>> RenderAsync(HttpContext http, IdentityDbContext db, IReadOnlyList<User> users)
    {
        var ids = users.Select(u => u.Id).ToList();
        var attributes = http.RequestServices.GetRequiredService<UserAttributes>();
        var stored = await attributes.OfAsync(db, ids);
        var memberships = await (
            from member in db.GroupMembers
            join grp in db.Groups on member.GroupId equals grp.Id
            where ids.Contains(member.UserId)
            orderby grp.DisplayName, grp.Id
            select new { member.UserId, grp.Id, grp.DisplayName }).ToListAsync();
        return users.Select(user =>
        {
            var resource = new JsonObject
            {
                ["schemas"] = new JsonArray(ScimSchemas.User),
                ["id"] = user.Id,
                ["userName"] = user.Email,
            };
            if (user.ExternalId is not null)
                resource["externalId"] = user.ExternalId;
            var name = new JsonObject();
            if ((Join(user.GivenName, user.FamilyName) ?? user.Name) is { } formatted)
                name["formatted"] = formatted;
            if (user.GivenName is not null)
                name["givenName"] = user.GivenName;
            if (user.FamilyName is not null)
                name["familyName"] = user.FamilyName;
            if (name.Count > 0)
                resource["name"] = name;
            if (user.Name is not null)
                resource["displayName"] = user.Name;
            foreach (var mapping in attributes.ScimMappings)
            {
                if (!stored[user.Id].TryGetValue(mapping.Declaration.Name, out var values))
                    continue;
                if (mapping.Extension is null)
                    resource[mapping.Attribute] = values[0];
                else
                {
                    if (resource[mapping.Extension] is not JsonObject extension)
                    {
                        resource[mapping.Extension] = extension = [];
                        resource["schemas"]!.AsArray().Add(mapping.Extension);
                    }
                    extension[mapping.Attribute] = values[0];
                }
            }
            resource["active"] = Accounts.IsActive(user);
            resource["emails"] = new JsonArray(new JsonObject { ["value"] = user.Email, ["type"] = "work", ["primary"] = true });
            resource["groups"] = new JsonArray([.. memberships.Where(m => m.UserId == user.Id).Select(m => new JsonObject
            {
                ["value"] = m.Id, ["display"] = m.DisplayName, ["$ref"] = ScimApi.Location(http, "Groups", m.Id), ["type"] = "direct",
            })]);
            resource["meta"] = ScimJson.Meta("User", user.CreatedAt, null, ScimApi.Location(http, "Users", user.Id));
            return ScimJson.Versioned(resource);
        }).ToList();
    }

    static string? Join(string? given, string? family) =>
        given is null && family is null ? null : string.Join(' ', new[] { given, family }.OfType<string>());

    /// <summary>
    /// A user as a request describes it: the whole resource for POST and PUT (what is absent is cleared), or the
    /// stored user changed by PATCH operations. Attributes this server does not keep are ignored, so a directory's
    /// full profile (title, phone numbers, the enterprise extension) is accepted; those mapped to declared user
    /// attributes (Identity:UserAttributes:N:Scim) are kept as them.
    /// </summary>
    sealed class Draft(UserAttributes mapped)
    {
        static readonly string EnterprisePath = ScimSchemas.EnterpriseUser.ToLowerInvariant();

        public string? UserName;
        public string? Name;
        public string? GivenName;
        public string? FamilyName;
        public string? ExternalId;
        public bool Active = true;
        public string? Password;
        bool userNameGiven;
        bool displayNameGiven;
        string? formatted;

        /// <summary>The value of each mapped user attribute, by its name; null for none.</summary>
        readonly Dictionary<string, string?> attributes = new(StringComparer.Ordinal);

        public static Draft Of(JsonObject body, UserAttributes mapped)
        {
            var draft = new Draft(mapped);
            foreach (var mapping in mapped.ScimMappings)
                draft.attributes[mapping.Declaration.Name] = null;
            foreach (var (key, value) in body)
                draft.Set(ScimPaths.Normalize(key), value);
            draft.Finish();
            return draft;
        }

        /// <summary>
        /// One name is stored, shown as displayName. name.formatted is shown as the given and family names joined,
        /// so as input it only stands in for a displayName the request did not give.
        /// </summary>
        public void Finish()
        {
            if (!displayNameGiven && formatted is not null)
                Name = formatted;
            Name ??= Join(GivenName, FamilyName);
        }

        public static Draft From(User user, UserAttributes mapped, Dictionary<string, List<string>> stored)
        {
            var draft = new Draft(mapped)
            {
                UserName = user.Email, Name = user.Name, GivenName = user.GivenName, FamilyName = user.FamilyName, ExternalId = user.ExternalId,
                Active = Accounts.IsActive(user),
            };
            foreach (var mapping in mapped.ScimMappings)
                draft.attributes[mapping.Declaration.Name] = stored.TryGetValue(mapping.Declaration.Name, out var values) ? values[0] : null;
            return draft;
        }

        /// <summary>The mapped attributes as <see cref="UserAttributes.StageAsync"/> takes them: each replaced, or removed when null.</summary>
        public Dictionary<string, List<string>> AttributeChanges() =>
            attributes.ToDictionary(a => a.Key, a => a.Value is null ? new List<string>() : [a.Value], StringComparer.Ordinal);

        /// <summary>A directory clears a value with null or an empty string.</summary>
        static string? AttributeValue(JsonNode? value, UserAttributes.ScimMapping mapping)
        {
            var text = ScimJson.String(value, mapping.Attribute);
            if (string.IsNullOrEmpty(text))
                return null;
            return UserAttributes.IsValue(text) ? text
                : throw new ScimException(400, ScimErrors.InvalidValue,
                    $"'{mapping.Attribute}' must be at most {UserAttributes.MaxValueLength} characters, without control characters.");
        }

        public string CheckedEmail()
        {
            var email = UserName?.Trim();
            if (string.IsNullOrEmpty(email))
                throw new ScimException(400, ScimErrors.InvalidValue, "userName is required.");
            if (!MailAddress.TryCreate(email, out var address) || address.Address != email)
                throw new ScimException(400, ScimErrors.InvalidValue, "userName must be an email address: accounts here are known by their email.");
            return email;
        }

        public void CheckNames()
        {
            foreach (var (value, what) in new[] { (Name, "displayName"), (GivenName, "name.givenName"), (FamilyName, "name.familyName"), (ExternalId, "externalId") })
                if (FreeText.Problem(value, what, 256) is { } problem)
                    throw new ScimException(400, ScimErrors.InvalidValue, problem);
        }

        public void Apply(ScimPatch.Operation operation)
        {
            if (operation.Path is null)
            {
                if (operation.Kind == ScimPatch.Remove)
                    throw new ScimException(400, ScimErrors.NoTarget, "A remove operation needs a path.");
                if (operation.Value is not JsonObject values)
                    throw new ScimException(400, ScimErrors.InvalidValue, "An operation without a path needs an object as its value.");
                foreach (var (key, value) in values)
                    Set(ScimPaths.Normalize(key), value, patch: true);
                return;
            }
            // A filtered path names the one work email or nothing stored: the filter needs no evaluation.
            var path = operation.Path.Attribute;
            if (operation.Kind == ScimPatch.Remove)
                Remove(path);
            else
                Set(path, operation.Value, patch: true);
        }

        void Set(string path, JsonNode? value, bool patch = false)
        {
            switch (path)
            {
                case "username":
                    UserName = ScimJson.String(value, "userName");
                    userNameGiven = true;
                    break;
                case "displayname":
                    Name = ScimJson.String(value, "displayName");
                    displayNameGiven = true;
                    break;
                case "name.formatted":
                    formatted = ScimJson.String(value, "name.formatted");
                    break;
                case "name.givenname":
                    GivenName = ScimJson.String(value, "name.givenName");
                    break;
                case "name.familyname":
                    FamilyName = ScimJson.String(value, "name.familyName");
                    break;
                case "name" when value is JsonObject name:
                    foreach (var (key, part) in name)
                        Set("name." + key.ToLowerInvariant(), part, patch);
                    break;
                case "externalid":
                    ExternalId = ScimJson.String(value, "externalId");
                    break;
                case "active":
                    Active = ScimJson.Boolean(value, "active");
                    break;
                case "password":
                    Password = ScimJson.String(value, "password");
                    break;
                case var extension when extension == EnterprisePath && value is JsonObject values:
                    foreach (var (key, part) in values)
                        Set($"{EnterprisePath}:{key.ToLowerInvariant()}", part, patch);
                    break;
                case var other when mapped.ScimMappings.FirstOrDefault(m => m.Path == other) is { } mapping:
                    attributes[mapping.Declaration.Name] = AttributeValue(value, mapping);
                    break;
                case "emails" or "emails.value":
                    // The primary (else the first) address; it is the account's, so it is also the userName. In a
                    // whole resource, userName wins.
                    if (PrimaryEmail(value) is { } email && (patch || !userNameGiven))
                        UserName = email;
                    break;
            }
        }

        void Remove(string path)
        {
            switch (path)
            {
                case "username" or "emails" or "emails.value":
                    throw new ScimException(400, ScimErrors.InvalidValue, "userName and the email are required: they cannot be removed.");
                case "active" or "password":
                    throw new ScimException(400, ScimErrors.InvalidValue, $"{path} cannot be removed.");
                case "displayname":
                    Name = null;
                    displayNameGiven = true;
                    break;
                case "name":
                    Name = GivenName = FamilyName = null;
                    break;
                case "name.givenname":
                    GivenName = null;
                    break;
                case "name.familyname":
                    FamilyName = null;
                    break;
                case "externalid":
                    ExternalId = null;
                    break;
                case var extension when extension == EnterprisePath:
                    foreach (var mapping in mapped.ScimMappings.Where(m => m.Extension is not null))
                        attributes[mapping.Declaration.Name] = null;
                    break;
                case var other when mapped.ScimMappings.FirstOrDefault(m => m.Path == other) is { } mapping:
                    attributes[mapping.Declaration.Name] = null;
                    break;
            }
        }

        static string? PrimaryEmail(JsonNode? value) => value switch
        {
            JsonArray emails => emails.OfType<JsonObject>()
                .OrderByDescending(e => e.Get("primary") is JsonValue primary && primary.TryGetValue<bool>(out var flag) && flag)
                .Select(e => ScimJson.String(e.Get("value"), "emails.value")).FirstOrDefault(),
            JsonObject email => ScimJson.String(email.Get("value"), "emails.value"),
            _ => ScimJson.String(value, "emails.value"),
        };
    }
}
