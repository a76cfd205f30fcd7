using System.Net;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Scim;

public sealed class SqliteScimGroupsTests(SqliteServer server) : ScimGroupsTests<SqliteServer>(server);
public sealed class PostgreSqlScimGroupsTests(PostgreSqlServer server) : ScimGroupsTests<PostgreSqlServer>(server);

/// <summary>The SCIM Group resource: membership as directories push it, and where it shows (users' groups, tokens, audit).</summary>
public abstract class ScimGroupsTests<TFactory>(TFactory factory) : ScimTestsBase<TFactory>(factory) where TFactory : ServerFactory
{
    static string Q(string value) => Uri.EscapeDataString(value);

    static string NewGroupName(string prefix = "group") => $"{prefix} {Guid.NewGuid():N}";

    static List<string> MemberIds(JsonElement group) =>
        group.TryGetProperty("members", out var members) && members.ValueKind == JsonValueKind.Array
            ? members.EnumerateArray().Select(m => m.GetProperty("value").GetString()!).Order().ToList()
            : [];

    static List<string> Sorted(params string[] ids) => ids.Order().ToList();

    async Task<JsonElement> GetAsync(string path) => Ok(await ScimAsync(HttpMethod.Get, path));

    /// <summary>The groups attribute of a user: group id to display.</summary>
    async Task<Dictionary<string, string?>> GroupsOfAsync(string userId)
    {
        var user = await GetAsync($"/scim/v2/Users/{userId}");
        return user.TryGetProperty("groups", out var groups) && groups.ValueKind == JsonValueKind.Array
            ? groups.EnumerateArray().ToDictionary(g => g.GetProperty("value").GetString()!, g => g.GetProperty("display").GetString())
            : [];
    }

    /// <summary>A group PATCH: 200 with the group or 204; the group as read back afterwards.</summary>
    async Task<JsonElement> PatchGroupAsync(string id, params string[] operations)
    {
        var answer = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Groups/{id}", Patch(operations));
        Assert.True(answer.Status is HttpStatusCode.OK or HttpStatusCode.NoContent, $"{answer.Status}: {answer.Body}");
        return await GetAsync($"/scim/v2/Groups/{id}");
    }

    [Fact]
    public async Task Groups_CreateReadReplaceDelete()
    {
        var email1 = NewEmail();
        var user1 = Id(await CreateScimUserAsync(email1));
        var user2 = Id(await CreateScimUserAsync(NewEmail()));
        var name = NewGroupName("Engineering");

        var created = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups", new
        {
            schemas = new[] { GroupSchema }, displayName = name, externalId = "grp-ext", members = new[] { new { value = user1 } },
        });
        var body = Ok(created, HttpStatusCode.Created);
        var id = Id(body);
        var read = await GetAsync($"/scim/v2/Groups/{id}");
        var groupsOfUser1 = await GroupsOfAsync(user1);
        var replaced = Ok(await ScimAsync(HttpMethod.Put, $"/scim/v2/Groups/{id}", new
        {
            schemas = new[] { GroupSchema }, displayName = name + " renamed", members = new[] { new { value = user2 } },
        }));
        var groupsAfterPut = (await GroupsOfAsync(user1), await GroupsOfAsync(user2));
        var deleted = await ScimAsync(HttpMethod.Delete, $"/scim/v2/Groups/{id}");

        var location = body.GetProperty("meta").GetProperty("location").GetString()!;
        Assert.Equal(location, created.Response.Headers.Location!.ToString());
        Assert.EndsWith($"/scim/v2/Groups/{id}", location);
        Assert.Equal("Group", body.GetProperty("meta").GetProperty("resourceType").GetString());
        Assert.Contains(GroupSchema, Strings(body.GetProperty("schemas")));
        foreach (var group in new[] { body, read })
        {
            Assert.Equal(name, group.GetProperty("displayName").GetString());
            Assert.Equal("grp-ext", group.GetProperty("externalId").GetString());
            var member = Assert.Single(group.GetProperty("members").EnumerateArray());
            Assert.Equal(user1, member.GetProperty("value").GetString());
            Assert.Equal(email1, member.GetProperty("display").GetString());
        }
        Assert.Equal(name, groupsOfUser1[id]);
        Assert.Equal(name + " renamed", replaced.GetProperty("displayName").GetString());
        Assert.Equal([user2], MemberIds(replaced));
        Assert.DoesNotContain(id, groupsAfterPut.Item1.Keys);
        Assert.Equal(name + " renamed", groupsAfterPut.Item2[id]);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Null(ScimError(await ScimAsync(HttpMethod.Get, $"/scim/v2/Groups/{id}"), HttpStatusCode.NotFound));
        ScimError(await ScimAsync(HttpMethod.Delete, $"/scim/v2/Groups/{id}"), HttpStatusCode.NotFound);
        Assert.DoesNotContain(id, (await GroupsOfAsync(user2)).Keys);
    }

    /// <summary>The product's seed example names members by email, as plain strings; a plain id works too.</summary>
    /// <summary>
    /// The application refuses a taken name, but two requests at once can both pass that check: the database must
    /// refuse the second server-wide group too, not only a second one in the same organization.
    /// </summary>
    [Fact]
    public async Task Groups_ServerWideNames_AreUniqueInTheDatabaseItself()
    {
        var name = NewGroupName().ToUpperInvariant();
        using var scope = Factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
        db.Groups.Add(new Identity.Server.Data.Group { DisplayName = name, NormalizedName = name });
        await db.SaveChangesAsync();

        db.Groups.Add(new Identity.Server.Data.Group { DisplayName = name.ToLowerInvariant(), NormalizedName = name });
        await Assert.ThrowsAsync<Microsoft.EntityFrameworkCore.DbUpdateException>(() => db.SaveChangesAsync());
    }

    [Fact]
    public async Task Groups_MembersAsPlainStrings_ByEmailOrId()
    {
        var email1 = NewEmail("dev1");
        var user1 = Id(await CreateScimUserAsync(email1));
        var user2 = Id(await CreateScimUserAsync(NewEmail("dev2")));

        var created = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups",
            $$"""{"schemas":["{{GroupSchema}}"],"displayName":"{{NewGroupName("Devs")}}","members":["{{email1}}","{{user2}}"]}""");

        Assert.Equal(Sorted(user1, user2), MemberIds(Ok(created, HttpStatusCode.Created)));
        Assert.Contains(Id(created.Body), (await GroupsOfAsync(user1)).Keys);
    }

    [Fact]
    public async Task Groups_Invalid_NothingCreated()
    {
        var user = Id(await CreateScimUserAsync(NewEmail()));
        var existing = NewGroupName("Unique");
        var existingId = Id(await CreateScimGroupAsync(existing, user));
        var withUnknownId = NewGroupName("Unknown id");
        var withUnknownEmail = NewGroupName("Unknown email");

        var noName = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups", new { schemas = new[] { GroupSchema }, members = new[] { new { value = user } } });
        var duplicate = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups", new { schemas = new[] { GroupSchema }, displayName = existing.ToUpperInvariant() });
        var unknownId = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups",
            new { schemas = new[] { GroupSchema }, displayName = withUnknownId, members = new[] { new { value = user }, new { value = Guid.NewGuid().ToString() } } });
        var unknownEmail = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups",
            $$"""{"schemas":["{{GroupSchema}}"],"displayName":"{{withUnknownEmail}}","members":["{{NewEmail("nobody")}}"]}""");
        var malformed = await ScimAsync(HttpMethod.Post, "/scim/v2/Groups", """{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":""");

        Assert.Equal("invalidValue", ScimError(noName, HttpStatusCode.BadRequest));
        Assert.Equal("uniqueness", ScimError(duplicate, HttpStatusCode.Conflict));
        Assert.Equal("invalidValue", ScimError(unknownId, HttpStatusCode.BadRequest));
        Assert.Equal("invalidValue", ScimError(unknownEmail, HttpStatusCode.BadRequest));
        Assert.Equal("invalidSyntax", ScimError(malformed, HttpStatusCode.BadRequest));
        var stored = Assert.Single(Resources(await GetAsync($"/scim/v2/Groups?filter={Q($"displayName eq \"{existing}\"")}")));
        Assert.Equal(existingId, Id(stored));
        Assert.Equal([user], MemberIds(stored));
        Assert.Empty(Resources(await GetAsync($"/scim/v2/Groups?filter={Q($"displayName eq \"{withUnknownId}\"")}")));
        Assert.Empty(Resources(await GetAsync($"/scim/v2/Groups?filter={Q($"displayName eq \"{withUnknownEmail}\"")}")));
        Assert.Equal([existingId], (await GroupsOfAsync(user)).Keys);
    }

    [Fact]
    public async Task Groups_FilterAndExcludedAttributes()
    {
        var user1 = Id(await CreateScimUserAsync(NewEmail()));
        var user2 = Id(await CreateScimUserAsync(NewEmail()));
        var name1 = NewGroupName("Filter one");
        var group1 = Id(await CreateScimGroupAsync(name1, user1));
        var group2 = Id(await CreateScimGroupAsync(NewGroupName("Filter two"), user2));

        var byName = Resources(await GetAsync($"/scim/v2/Groups?filter={Q($"displayName eq \"{name1}\"")}"));
        var byMember = Resources(await GetAsync($"/scim/v2/Groups?filter={Q($"members[value eq \"{user2}\"]")}"));
        var withMembers = await GetAsync($"/scim/v2/Groups?filter={Q($"displayName eq \"{name1}\"")}");
        var withoutMembers = await GetAsync($"/scim/v2/Groups?filter={Q($"displayName eq \"{name1}\"")}&excludedAttributes=members");
        var badFilter = await ScimAsync(HttpMethod.Get, $"/scim/v2/Groups?filter={Q("displayName eq")}");

        Assert.Equal([group1], byName.Select(Id));
        Assert.Equal([group2], byMember.Select(Id));
        Assert.Equal([user1], MemberIds(Assert.Single(Resources(withMembers))));
        var projected = Assert.Single(Resources(withoutMembers));
        Assert.False(projected.TryGetProperty("members", out _));
        Assert.Equal(name1, projected.GetProperty("displayName").GetString());
        Assert.Equal("invalidFilter", ScimError(badFilter, HttpStatusCode.BadRequest));
    }

    /// <summary>RFC 7644 §3.14 for groups: the version covers the members, so a group read without them has none.</summary>
    [Fact]
    public async Task Groups_Versions_CoverTheMembers_AStaleChangeIs412()
    {
        var user1 = Id(await CreateScimUserAsync(NewEmail()));
        var user2 = Id(await CreateScimUserAsync(NewEmail()));
        var created = await CreateScimGroupAsync(NewGroupName("Versioned"), user1);
        var path = $"/scim/v2/Groups/{Id(created)}";
        var first = Version(created);

        var added = Ok(await ScimAsync(HttpMethod.Patch, path, Patch($$"""{"op":"add","path":"members","value":[{"value":"{{user2}}"}]}"""),
            ("If-Match", first)));
        var stale = await ScimAsync(HttpMethod.Put, path, new { schemas = new[] { GroupSchema }, displayName = "Overwritten", members = Array.Empty<object>() },
            ("If-Match", first));
        var withoutMembers = await GetAsync($"{path}?excludedAttributes=members");

        Assert.NotEqual(first, Version(added));
        Assert.Equal(Version(added), Version(await GetAsync(path)));
        Assert.Null(ScimError(stale, HttpStatusCode.PreconditionFailed));
        Assert.Equal(Sorted(user1, user2), MemberIds(await GetAsync(path)));
        Assert.False(withoutMembers.GetProperty("meta").TryGetProperty("version", out _));
        Assert.Equal(HttpStatusCode.NotModified, (await ScimAsync(HttpMethod.Get, path, null, ("If-None-Match", Version(added)))).Status);
    }

    [Fact]
    public async Task Groups_Patch_AddRemoveReplaceMembers()
    {
        var user1 = Id(await CreateScimUserAsync(NewEmail()));
        var user2 = Id(await CreateScimUserAsync(NewEmail()));
        var user3 = Id(await CreateScimUserAsync(NewEmail()));
        var id = Id(await CreateScimGroupAsync(NewGroupName("Patched"), user1));

        var added = await PatchGroupAsync(id, $$"""{"op":"Add","path":"members","value":[{"value":"{{user2}}"}]}""");
        var removed = await PatchGroupAsync(id, $$"""{"op":"remove","path":"members[value eq \"{{user1}}\"]"}""");
        var removedAgain = await PatchGroupAsync(id, $$"""{"op":"remove","path":"members[value eq \"{{user1}}\"]"}""");
        var replaced = await PatchGroupAsync(id, $$"""{"op":"replace","path":"members","value":[{"value":"{{user1}}"},{"value":"{{user3}}"}]}""");
        var unknown = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Groups/{Guid.NewGuid()}", Patch("""{"op":"replace","value":{"displayName":"Nobody"}}"""));

        Assert.Equal(Sorted(user1, user2), MemberIds(added));
        Assert.Equal([user2], MemberIds(removed));
        Assert.Equal([user2], MemberIds(removedAgain));
        Assert.Equal(Sorted(user1, user3), MemberIds(replaced));
        Assert.Contains(id, (await GroupsOfAsync(user3)).Keys);
        Assert.DoesNotContain(id, (await GroupsOfAsync(user2)).Keys);
        ScimError(unknown, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Groups_Patch_RenameOktaAndEntraStyle()
    {
        var user = Id(await CreateScimUserAsync(NewEmail()));
        var id = Id(await CreateScimGroupAsync(NewGroupName("Old"), user));
        var okta = NewGroupName("Okta");
        var entra = NewGroupName("Entra");

        var byValue = await PatchGroupAsync(id, $$$"""{"op":"replace","value":{"displayName":"{{{okta}}}"}}""");
        var byPath = await PatchGroupAsync(id, $$"""{"op":"Replace","path":"displayName","value":"{{entra}}"}""");

        Assert.Equal(okta, byValue.GetProperty("displayName").GetString());
        Assert.Equal(entra, byPath.GetProperty("displayName").GetString());
        Assert.Equal([user], MemberIds(byPath));
        Assert.Equal(entra, (await GroupsOfAsync(user))[id]);
    }

    [Fact]
    public async Task Groups_DeletingAUser_RemovesThemFromMembers()
    {
        var user1 = Id(await CreateScimUserAsync(NewEmail()));
        var user2 = Id(await CreateScimUserAsync(NewEmail()));
        var id = Id(await CreateScimGroupAsync(NewGroupName("Leavers"), user1, user2));

        var deleted = await ScimAsync(HttpMethod.Delete, $"/scim/v2/Users/{user1}");

        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal([user2], MemberIds(await GetAsync($"/scim/v2/Groups/{id}")));
        Assert.Empty(Resources(await GetAsync($"/scim/v2/Groups?filter={Q($"members[value eq \"{user1}\"]")}")));
    }

    [Fact]
    public async Task Groups_ChangesAreAudited()
    {
        var user = Id(await CreateScimUserAsync(NewEmail()));
        var name = NewGroupName("Audited");
        var id = Id(await CreateScimGroupAsync(name));
        await PatchGroupAsync(id, $$"""{"op":"add","path":"members","value":[{"value":"{{user}}"}]}""");
        Assert.Equal(HttpStatusCode.NoContent, (await ScimAsync(HttpMethod.Delete, $"/scim/v2/Groups/{id}")).Status);
        var admin = await AdminAsync();

        async Task<int> CountAsync(string action) =>
            (await AuditAsync(admin, $"action={action}")).Count(e => e.ToString() is var text
                && (text.Contains(id, StringComparison.Ordinal) || text.Contains(name, StringComparison.Ordinal)));

        Assert.Equal(1, await CountAsync("group.created"));
        Assert.True(await CountAsync("group.updated") >= 1, "the membership change was not audited");
        Assert.Equal(1, await CountAsync("group.deleted"));
    }

    /// <summary>The groups claim goes with roles: a password grant on the web client and the auth API's login both carry it.</summary>
    [Fact]
    public async Task Groups_AreInTheMembersTokens()
    {
        var email = NewEmail();
        var user = Id(await CreateScimUserAsync(email, password: Password));
        var first = NewGroupName("Token one");
        var second = NewGroupName("Token two");
        var firstId = Id(await CreateScimGroupAsync(first, user));

        var one = await PasswordGrantAsync(email, scope: "openid roles identity");
        var login = await LoginAsync(email);
        await CreateScimGroupAsync(second, user);
        var two = await PasswordGrantAsync(email, scope: "openid roles identity");
        await PatchGroupAsync(firstId, $$"""{"op":"remove","path":"members[value eq \"{{user}}\"]"}""");
        var afterRemoval = await PasswordGrantAsync(email, scope: "openid roles identity");

        Assert.False(one.IsError, one.Error);
        Assert.Equal([first], await GroupsClaimAsync(one.AccessToken!));
        Assert.Equal([first], await GroupsClaimAsync(login));
        Assert.Equal(Sorted(first, second), await GroupsClaimAsync(two.AccessToken!));
        Assert.Equal([second], await GroupsClaimAsync(afterRemoval.AccessToken!));
    }

    /// <summary>A group is its members' parent in policies (Group::"name"), and a membership change applies to the next decision.</summary>
    [Fact]
    public async Task Groups_AreTheirMembersParentsInPolicies()
    {
        var admin = await AdminAsync();
        var email = NewEmail();
        var user = Id(await CreateScimUserAsync(email));
        var name = NewGroupName("Policy");
        var groupId = Id(await CreateScimGroupAsync(name, user));
        var policyId = $"group-share-{Guid.NewGuid():N}";
        var policy = await ApiAsync(HttpMethod.Post, "/api/v1/policies", admin, new
        {
            id = policyId,
            policy = $$"""permit (principal in Group::"{{name}}", action == Action::"share", resource is Document);""",
        });
        Assert.True(policy.Status == HttpStatusCode.Created, policy.Body.ToString());
        var asMember = await ShareDecisionAsync(email);
        await PatchGroupAsync(groupId, $$"""{"op":"remove","path":"members[value eq \"{{user}}\"]"}""");
        var afterRemoval = await ShareDecisionAsync(email);
        await ApiAsync(HttpMethod.Delete, $"/api/v1/policies/{policyId}", admin);

        Assert.Equal("Allow", asMember);
        Assert.Equal("Deny", afterRemoval);
    }

    /// <summary>The groups claim of an access token, sorted: a JSON array, or a single string for one group.</summary>
    async Task<List<string>> GroupsClaimAsync(string accessToken)
    {
        var jwt = await ValidateJwtAsync(accessToken, "identity");
        using var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(jwt.EncodedPayload));
        if (!payload.RootElement.TryGetProperty("groups", out var groups))
            return [];
        return groups.ValueKind == JsonValueKind.Array ? groups.EnumerateArray().Select(g => g.GetString()!).Order().ToList() : [groups.GetString()!];
    }
}
