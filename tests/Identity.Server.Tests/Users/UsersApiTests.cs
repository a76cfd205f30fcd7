using System.Net;
using System.Text;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Identity.Server.Tests.Users;

public sealed class SqliteUsersApiTests(SqliteServer server) : UsersApiTests<SqliteServer>(server);
public sealed class PostgreSqlUsersApiTests(PostgreSqlServer server) : UsersApiTests<PostgreSqlServer>(server);

/// <summary>/api/v1/users, /api/v1/roles and /api/v1/permissions: what each permission allows, and organization isolation.</summary>
public abstract class UsersApiTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    static IEnumerable<string?> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString());

    async Task<string> IdOfAsync(string admin, string email)
    {
        var page = await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(email)}", admin);
        Assert.True(page.Status == HttpStatusCode.OK, page.Body.ToString());
        return page.Body.GetProperty("users")[0].GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task Users_CreateReadUpdateDelete()
    {
        var admin = await AdminAsync();
        var email = $"crud-{Guid.NewGuid():N}@example.test";

        var created = await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email, password = Password, name = "Jane Doe", roles = new[] { "user" } });
        var id = created.Body.GetProperty("user").GetProperty("id").GetString();
        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin);
        var updated = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { name = "Jane Smith" });
        var userToken = await LoginAsync(email);
        var deleted = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}", admin);

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal($"/api/v1/users/{id}", created.Response.Headers.Location!.ToString());
        Assert.Equal("Jane Doe", read.Body.GetProperty("user").GetProperty("name").GetString());
        Assert.Equal("Jane Smith", updated.Body.GetProperty("user").GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal("NOT_FOUND", ErrorCode(await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin)));
        // Deleted: the tokens it had are refused and it cannot sign in again.
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", userToken)).Status);
        var login = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(login));
    }

    [Fact]
    public async Task Users_ListPaginatesSearchesAndFiltersByRole()
    {
        var admin = await AdminAsync();
        var tag = Guid.NewGuid().ToString("N")[..10];
        foreach (var i in Enumerable.Range(0, 3))
            await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email = $"list{i}-{tag}@example.test", password = Password, name = $"Lister {i}" });
        var roleName = $"auditor-{tag}";
        await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = roleName, permissions = new[] { "audit:read" } });
        await ApiAsync(HttpMethod.Post, $"/api/v1/users/{await IdOfAsync(admin, $"list1-{tag}")}/roles", admin, new { role_id = roleName });

        var all = await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={tag}", admin);
        var firstPage = await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={tag}&limit=2&page=1", admin);
        var secondPage = await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={tag}&limit=2&page=2", admin);
        var byRole = await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={tag}&role={roleName}", admin);

        Assert.Equal(3, all.Body.GetProperty("total").GetInt32());
        Assert.Equal(20, all.Body.GetProperty("limit").GetInt32());
        Assert.Equal(2, firstPage.Body.GetProperty("users").GetArrayLength());
        Assert.Equal(1, secondPage.Body.GetProperty("users").GetArrayLength());
        Assert.Equal(3, secondPage.Body.GetProperty("total").GetInt32());
        Assert.Equal($"list1-{tag}@example.test", byRole.Body.GetProperty("users").EnumerateArray().Single().GetProperty("email").GetString());
    }

    [Theory]
    [InlineData("page=abc")]
    [InlineData("page=0")]
    [InlineData("limit=101")]
    [InlineData("limit=-5")]
    [InlineData("limit=1e3")]
    [InlineData("page=2147483647")]
    [InlineData("page=214748366&limit=20")]
    public async Task Users_ListBadQuery_Is400(string query)
    {
        var answer = await ApiAsync(HttpMethod.Get, $"/api/v1/users?{query}", await AdminAsync());

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
    }

    /// <summary>
    /// Requests that race to change the same account or role (two admins, or one retrying client): each answers what it
    /// did (200/204), that the thing is gone (404), or 409 CONFLICT for a lost race it may retry; never a server error.
    /// </summary>
    [Fact]
    public async Task Api_RacingChangesOfOneAccount_AreNeverAServerError()
    {
        var admin = await AdminAsync();
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);
        var role = $"racing-{Guid.NewGuid():N}"[..20];
        Assert.Equal(HttpStatusCode.Created, (await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = role, permissions = new[] { "users:read" } })).Status);

        var assigned = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ApiAsync(HttpMethod.Post, $"/api/v1/users/{id}/roles", admin, new { role_id = role })));
        var renamed = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => ApiAsync(HttpMethod.Put, $"/api/v1/roles/{role}", admin, new { description = $"take {i}" })));
        var deleted = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}", admin)));

        Assert.All(assigned.Concat(renamed).Concat(deleted), a => Assert.True((int)a.Status < 500, $"{(int)a.Status} {a.Body}"));
        Assert.All(assigned.Concat(renamed).Concat(deleted).Where(a => a.Status == HttpStatusCode.Conflict), a => Assert.Equal("CONFLICT", ErrorCode(a)));
        Assert.Contains(assigned, a => a.Status == HttpStatusCode.OK);
        Assert.Contains(renamed, a => a.Status == HttpStatusCode.OK);
        Assert.Single(deleted, a => a.Status == HttpStatusCode.NoContent);
        Assert.Equal(HttpStatusCode.NotFound, (await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin)).Status);
    }

    /// <summary>A value of the wrong type (a null or a number in a list of names, text for a number) is a malformed body: 400 naming the field, and nothing is made.</summary>
    [Theory]
    [InlineData("/api/v1/roles", """{"name":"nulls-{0}","permissions":["users:read",null]}""", "permissions")]
    [InlineData("/api/v1/roles", """{"name":"numbers-{0}","permissions":[1]}""", "permissions")]
    [InlineData("/api/v1/users", """{"email":"nulls-{0}@example.test","password":"a long enough passphrase","roles":[null]}""", "roles")]
    [InlineData("/api/v1/webhooks", """{"url":"https://hooks.example.test/{0}","events":["user.created",null]}""", "events")]
    [InlineData("/api/v1/clients", """{"client_id":"nulls-{0}","grant_types":[null]}""", "grant_types")]
    [InlineData("/api/v1/clients", """{"client_id":"scopes-{0}","grant_types":["client_credentials"],"scopes":[null]}""", "scopes")]
    [InlineData("/api/v1/webhooks", """{"url":"https://hooks.example.test/{0}","events":["user.created"],"retry_policy":{"max_attempts":"x"}}""", "retry_policy.max_attempts")]
    public async Task Api_ABodyValueOfTheWrongType_Is400NamingItAndMakesNothing(string path, string json, string field)
    {
        var admin = await AdminAsync();
        var unique = Guid.NewGuid().ToString("N")[..12];

        var answer = await ApiAsync(HttpMethod.Post, path, admin, new StringContent(json.Replace("{0}", unique), Encoding.UTF8, "application/json"));
        var listed = await ApiAsync(HttpMethod.Get, path == "/api/v1/users" ? $"{path}?search={unique}" : path, admin);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        Assert.Equal(field, answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.OK, listed.Status);
        Assert.DoesNotContain(unique, listed.Body.GetRawText());
    }

    [Fact]
    public async Task Users_NeedThePermission_NotJustAToken()
    {
        var user = await LoginAsync(await CreateUserAsync());

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/users", user);
        var create = await ApiAsync(HttpMethod.Post, "/api/v1/users", user, new { email = "x@example.test", password = Password });
        var roles = await ApiAsync(HttpMethod.Get, "/api/v1/roles", user);
        var anonymous = await ApiAsync(HttpMethod.Get, "/api/v1/users");

        Assert.Equal("FORBIDDEN", ErrorCode(list));
        Assert.Equal(HttpStatusCode.Forbidden, create.Status);
        Assert.Equal(HttpStatusCode.Forbidden, roles.Status);
        Assert.Equal("UNAUTHORIZED", ErrorCode(anonymous));
    }

    [Fact]
    public async Task Users_CustomRoleGrantsItsPermission_NotTheRoleName()
    {
        var admin = await AdminAsync();
        var roleName = $"support-{Guid.NewGuid():N}"[..20];
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);
        var role = await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = roleName, description = "Help desk", permissions = new[] { "users:read" } });
        await ApiAsync(HttpMethod.Post, $"/api/v1/users/{id}/roles", admin, new { role_id = role.Body.GetProperty("role").GetProperty("id").GetString() });

        var token = await LoginAsync(email);

        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, "/api/v1/users", token)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}", token)).Status);
        Assert.Contains(roleName, Strings((await ValidateJwtAsync(token, "identity")).GetPayloadValue<JsonElement>("roles")));
    }

    [Fact]
    public async Task Roles_ChangeShowsInTheNextToken()
    {
        var admin = await AdminAsync();
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);
        var login = (await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password })).Body;

        var assigned = await ApiAsync(HttpMethod.Post, $"/api/v1/users/{id}/roles", admin, new { role_id = "admin" });
        var refreshed = (await ApiAsync(HttpMethod.Post, "/api/v1/auth/refresh", body: new { refresh_token = login.GetProperty("refresh_token").GetString() })).Body;
        var removed = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/roles/admin", admin);
        var again = (await ApiAsync(HttpMethod.Post, "/api/v1/auth/refresh", body: new { refresh_token = refreshed.GetProperty("refresh_token").GetString() })).Body;

        Assert.Contains("admin", Strings(assigned.Body.GetProperty("user").GetProperty("roles")));
        Assert.Contains("admin", Strings((await ValidateJwtAsync(refreshed.GetProperty("access_token").GetString()!, "identity")).GetPayloadValue<JsonElement>("roles")));
        Assert.DoesNotContain("admin", Strings(removed.Body.GetProperty("user").GetProperty("roles")));
        Assert.DoesNotContain("admin", Strings((await ValidateJwtAsync(again.GetProperty("access_token").GetString()!, "identity")).GetPayloadValue<JsonElement>("roles")));
    }

    [Fact]
    public async Task Roles_ListCreateAndPermissionCatalogue()
    {
        var admin = await AdminAsync();
        var name = $"viewer-{Guid.NewGuid():N}"[..18];

        var created = await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name, description = "Reads users", permissions = new[] { "users:read" } });
        var duplicate = await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name, permissions = new[] { "users:read" } });
        var unknown = await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = name + "x", permissions = new[] { "users:read", "root:everything" } });
        var badName = await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = "Bad Name!", permissions = Array.Empty<string>() });
        var list = await ApiAsync(HttpMethod.Get, "/api/v1/roles", admin);
        var catalogue = await ApiAsync(HttpMethod.Get, "/api/v1/permissions", admin);

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(["users:read"], Strings(created.Body.GetProperty("role").GetProperty("permissions")));
        Assert.Equal("CONFLICT", ErrorCode(duplicate));
        Assert.Equal("INVALID_REQUEST", ErrorCode(unknown));
        Assert.Equal(["root:everything"], Strings(unknown.Body.GetProperty("error").GetProperty("details").GetProperty("unknown")));
        Assert.Equal("INVALID_REQUEST", ErrorCode(badName));
        var roles = list.Body.GetProperty("roles").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Contains("audit:read", Strings(roles["admin"].GetProperty("permissions")));
        Assert.Equal(["read:profile", "write:profile"], Strings(roles["user"].GetProperty("permissions")));
        Assert.True(roles["org_admin"].GetProperty("organization_scoped").GetBoolean());
        Assert.True(roles.ContainsKey(name));
        var names = catalogue.Body.GetProperty("permissions").EnumerateArray().Select(p => p.GetProperty("name").GetString()).ToList();
        Assert.Contains("users:write", names);
        Assert.Contains("roles:write", names);
    }

    [Fact]
    public async Task Roles_UpdateChangesWhatHoldersMayDo_DeleteTakesItAway_BuiltInsStay()
    {
        var admin = await AdminAsync();
        var name = $"viewer-{Guid.NewGuid():N}"[..18];
        var roleId = (await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name, permissions = Array.Empty<string>() }))
            .Body.GetProperty("role").GetProperty("id").GetString();
        var email = await CreateUserAsync();
        var userId = await IdOfAsync(admin, email);
        await ApiAsync(HttpMethod.Post, $"/api/v1/users/{userId}/roles", admin, new { role_id = name });
        var holder = await LoginAsync(email);
        Assert.Equal(HttpStatusCode.Forbidden, (await ApiAsync(HttpMethod.Get, "/api/v1/users", holder)).Status);

        var updated = await ApiAsync(HttpMethod.Put, $"/api/v1/roles/{roleId}", admin, new { description = "Reads users", permissions = new[] { "users:read" } });
        var mayRead = await ApiAsync(HttpMethod.Get, "/api/v1/users", holder);
        var deleted = await ApiAsync(HttpMethod.Delete, $"/api/v1/roles/{name}", admin);
        var mayNoLonger = await ApiAsync(HttpMethod.Get, "/api/v1/users", holder);

        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal(["users:read"], Strings(updated.Body.GetProperty("role").GetProperty("permissions")));
        Assert.Equal("Reads users", updated.Body.GetProperty("role").GetProperty("description").GetString());
        Assert.Equal(HttpStatusCode.OK, mayRead.Status);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal(HttpStatusCode.Forbidden, mayNoLonger.Status);
        Assert.DoesNotContain(name, Strings((await ApiAsync(HttpMethod.Get, $"/api/v1/users/{userId}", admin)).Body.GetProperty("user").GetProperty("roles")));
        Assert.DoesNotContain(name, (await ApiAsync(HttpMethod.Get, "/api/v1/roles", admin)).Body.GetProperty("roles").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        Assert.Equal("NOT_FOUND", ErrorCode(await ApiAsync(HttpMethod.Put, $"/api/v1/roles/{name}", admin, new { description = "gone" })));
        var actions = (await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=100", admin)).Body.GetProperty("entries").EnumerateArray()
            .Where(e => e.GetProperty("details") is { ValueKind: JsonValueKind.Object } details && details.TryGetProperty("role", out var role) && role.GetString() == name).Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Contains("role.updated", actions);
        Assert.Contains("role.deleted", actions);

        foreach (var builtIn in new[] { "admin", "user", "org_admin" })
        {
            Assert.Equal("built_in", (await ApiAsync(HttpMethod.Put, $"/api/v1/roles/{builtIn}", admin, new { permissions = Array.Empty<string>() }))
                .Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
            Assert.Equal(HttpStatusCode.Forbidden, (await ApiAsync(HttpMethod.Delete, $"/api/v1/roles/{builtIn}", admin)).Status);
        }
        Assert.Contains("audit:read", Strings((await ApiAsync(HttpMethod.Get, "/api/v1/roles", admin)).Body.GetProperty("roles").EnumerateArray()
            .Single(r => r.GetProperty("name").GetString() == "admin").GetProperty("permissions")));
    }

    [Fact]
    public async Task Roles_ChangingOneNeedsEveryPermissionItGrants_BeforeAndAfter()
    {
        var admin = await AdminAsync();
        var suffix = Guid.NewGuid().ToString("N")[..8];
        await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = $"managers-{suffix}", permissions = new[] { "roles:read", "roles:write", "users:read" } });
        await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = $"auditors-{suffix}", permissions = new[] { "audit:read" } });
        await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = $"readers-{suffix}", permissions = new[] { "users:read" } });
        var email = await CreateUserAsync();
        await ApiAsync(HttpMethod.Post, $"/api/v1/users/{await IdOfAsync(admin, email)}/roles", admin, new { role_id = $"managers-{suffix}" });
        var manager = await LoginAsync(email);

        var strip = await ApiAsync(HttpMethod.Put, $"/api/v1/roles/auditors-{suffix}", manager, new { permissions = Array.Empty<string>() });
        var delete = await ApiAsync(HttpMethod.Delete, $"/api/v1/roles/auditors-{suffix}", manager);
        var escalate = await ApiAsync(HttpMethod.Put, $"/api/v1/roles/readers-{suffix}", manager, new { permissions = new[] { "users:read", "users:write" } });
        var unknown = await ApiAsync(HttpMethod.Put, $"/api/v1/roles/readers-{suffix}", admin, new { permissions = new[] { "root:everything" } });
        var describe = await ApiAsync(HttpMethod.Put, $"/api/v1/roles/readers-{suffix}", manager, new { description = "Read-only support" });

        Assert.Equal("FORBIDDEN", ErrorCode(strip));
        Assert.Equal("FORBIDDEN", ErrorCode(delete));
        Assert.Equal("FORBIDDEN", ErrorCode(escalate));
        Assert.Equal("INVALID_REQUEST", ErrorCode(unknown));
        Assert.Equal(HttpStatusCode.OK, describe.Status);
        var roles = (await ApiAsync(HttpMethod.Get, "/api/v1/roles", admin)).Body.GetProperty("roles").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(["audit:read"], Strings(roles[$"auditors-{suffix}"].GetProperty("permissions")));
        Assert.Equal(["users:read"], Strings(roles[$"readers-{suffix}"].GetProperty("permissions")));
    }

    [Fact]
    public async Task OrgAdmin_ManagesOwnOrganizationOnly_OthersAreNotFound()
    {
        var acme = $"acme-{Guid.NewGuid():N}.test";
        var other = $"other-{Guid.NewGuid():N}.test";
        var orgAdminEmail = await CreateUserInAsync(acme);           // first verified member: org_admin
        var colleague = await CreateUserInAsync(acme);
        var stranger = await CreateUserInAsync(other);
        var admin = await AdminAsync();
        var strangerId = await IdOfAsync(admin, stranger);
        var colleagueId = await IdOfAsync(admin, colleague);
        var orgAdmin = await LoginAsync(orgAdminEmail);

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/users", orgAdmin);
        var readStranger = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{strangerId}", orgAdmin);
        var deleteStranger = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{strangerId}", orgAdmin);
        var renameColleague = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{colleagueId}", orgAdmin, new { name = "Renamed" });
        var createElsewhere = await ApiAsync(HttpMethod.Post, "/api/v1/users", orgAdmin, new { email = $"new@{other}", password = Password });
        var createHere = await ApiAsync(HttpMethod.Post, "/api/v1/users", orgAdmin, new { email = $"new@{acme}", password = Password });
        var escalate = await ApiAsync(HttpMethod.Post, $"/api/v1/users/{colleagueId}/roles", orgAdmin, new { role_id = "admin" });
        var moveOut = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{colleagueId}", orgAdmin, new { email = $"moved@{other}" });

        var emails = list.Body.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("email").GetString()).ToList();
        Assert.Equal(2, list.Body.GetProperty("total").GetInt32());
        Assert.Contains(colleague, emails);
        Assert.DoesNotContain(stranger, emails);
        Assert.Equal("NOT_FOUND", ErrorCode(readStranger));
        Assert.Equal(HttpStatusCode.NotFound, deleteStranger.Status);
        Assert.Equal(HttpStatusCode.OK, renameColleague.Status);
        Assert.Equal(HttpStatusCode.Forbidden, createElsewhere.Status);
        Assert.Equal(HttpStatusCode.Created, createHere.Status);
        Assert.Equal(HttpStatusCode.Forbidden, escalate.Status);
        Assert.Equal(HttpStatusCode.Forbidden, moveOut.Status);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, $"/api/v1/users/{strangerId}", admin)).Status);
    }

    /// <summary>
    /// A server admin who shares the organization admin's domain is visible to it, but not changeable: re-addressing,
    /// resetting MFA, ending sessions or deleting would hand the org admin the server admin's account.
    /// </summary>
    [Fact]
    public async Task Users_PasswordReset_ByAnAdmin_EndsEverySessionOfTheUser()
    {
        var admin = await AdminAsync();
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);
        var session = await PasswordGrantAsync(email);
        const string newPassword = "a reset long passphrase";

        var weak = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { password = "password1234" });
        Assert.Equal("INVALID_REQUEST", ErrorCode(weak));
        Assert.Equal("password", weak.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.False((await RefreshAsync(session.RefreshToken!)).IsError);
        session = await PasswordGrantAsync(email);

        var reset = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { password = newPassword });

        Assert.Equal(HttpStatusCode.OK, reset.Status);
        Assert.Equal("invalid_grant", (await RefreshAsync(session.RefreshToken!)).Error);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", session.AccessToken)).Status);
        Assert.True((await PasswordGrantAsync(email)).IsError);
        Assert.False((await PasswordGrantAsync(email, newPassword)).IsError);
    }

    /// <summary>An admin disables an account (Keycloak's enabled switch): every sign-in and every token it held stop; enabling restores sign-in.</summary>
    [Fact]
    public async Task Users_Deactivated_ByAnAdmin_CannotSignIn_UntilReactivated()
    {
        var admin = await AdminAsync();
        var adminId = await IdOfAsync(admin, ServerFactory.AdminEmail);
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);
        var session = await PasswordGrantAsync(email);

        var deactivated = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { active = false });
        var refresh = await RefreshAsync(session.RefreshToken!);
        var me = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", session.AccessToken);
        var login = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });
        var reactivated = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { active = true });
        var self = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{adminId}", admin, new { active = false });

        Assert.Equal(HttpStatusCode.OK, deactivated.Status);
        Assert.False(deactivated.Body.GetProperty("user").GetProperty("active").GetBoolean());
        Assert.Equal("invalid_grant", refresh.Error);
        Assert.Equal(HttpStatusCode.Unauthorized, me.Status);
        Assert.Equal("account_disabled", login.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.True(reactivated.Body.GetProperty("user").GetProperty("active").GetBoolean());
        Assert.False((await PasswordGrantAsync(email)).IsError);
        Assert.Equal("INVALID_REQUEST", ErrorCode(self));
        Assert.NotEmpty(await AdminAsync());
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}&action=user.updated", admin);
        Assert.Contains(audit.Body.GetProperty("entries").EnumerateArray(),
            e => e.GetProperty("details").GetProperty("changed").EnumerateArray().Any(c => c.GetString() == "active"));
    }

    [Fact]
    public async Task OrgAdmin_CannotChangeAnAccountHoldingMoreThanItself()
    {
        var acme = $"acme-{Guid.NewGuid():N}.test";
        var orgAdminEmail = await CreateUserInAsync(acme);           // first verified member: org_admin
        var rootEmail = await CreateUserInAsync(acme, "admin");
        var peerEmail = await CreateUserInAsync(acme, "org_admin");
        var admin = await AdminAsync();
        var rootId = await IdOfAsync(admin, rootEmail);
        var peerId = await IdOfAsync(admin, peerEmail);
        var orgAdmin = await LoginAsync(orgAdminEmail);

        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{rootId}", orgAdmin);
        var readdress = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{rootId}", orgAdmin, new { email = $"taken@{acme}", email_verified = true });
        var resetMfa = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{rootId}/mfa", orgAdmin);
        var giveRole = await ApiAsync(HttpMethod.Post, $"/api/v1/users/{rootId}/roles", orgAdmin, new { role_id = "user" });
        var endSessions = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{rootId}/sessions", orgAdmin);
        var delete = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{rootId}", orgAdmin);
        var renamePeer = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{peerId}", orgAdmin, new { name = "Peer" });

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("FORBIDDEN", ErrorCode(readdress));
        Assert.Equal("FORBIDDEN", ErrorCode(resetMfa));
        Assert.Equal("FORBIDDEN", ErrorCode(giveRole));
        Assert.Equal("FORBIDDEN", ErrorCode(delete));
        Assert.Equal("NOT_FOUND", ErrorCode(endSessions));
        Assert.Equal(HttpStatusCode.OK, renamePeer.Status);
        var root = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{rootId}", admin);
        Assert.Equal(rootEmail, root.Body.GetProperty("user").GetProperty("email").GetString());
        Assert.NotEmpty(await LoginAsync(rootEmail));
    }

    /// <summary>
    /// A helpdesk removes the passkey of a lost device: the users API lists a user's passkeys (never their public keys)
    /// and removes one, audited. The passkey is stored as the passkeys page stores one, through UserManager.
    /// </summary>
    [Fact]
    public async Task Users_Passkeys_ListedAndRemovedByAnAdmin()
    {
        var admin = await AdminAsync();
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);
        var credentialId = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        using (var scope = Factory.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Identity.Server.Data.User>>();
            var stored = await users.AddOrUpdatePasskeyAsync((await users.FindByIdAsync(id))!,
                new Microsoft.AspNetCore.Identity.UserPasskeyInfo(credentialId, System.Security.Cryptography.RandomNumberGenerator.GetBytes(77),
                    DateTimeOffset.UtcNow, 0, ["internal"], isUserVerified: true, isBackupEligible: true, isBackedUp: true, [], [])
                { Name = "Lost phone" });
            Assert.True(stored.Succeeded);
        }
        var passkeyId = Microsoft.AspNetCore.WebUtilities.WebEncoders.Base64UrlEncode(credentialId);
        var someone = await LoginAsync(await CreateUserAsync());

        var listed = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}/passkeys", admin);
        var byUser = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/passkeys/{passkeyId}", someone);
        var removed = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/passkeys/{passkeyId}", admin);
        var again = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/passkeys/{passkeyId}", admin);
        var after = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}/passkeys", admin);
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?action=passkey.removed&user_id={id}", admin);

        var passkey = listed.Body.GetProperty("passkeys").EnumerateArray().Single();
        Assert.Equal(passkeyId, passkey.GetProperty("id").GetString());
        Assert.Equal("Lost phone", passkey.GetProperty("name").GetString());
        Assert.True(passkey.GetProperty("backed_up").GetBoolean());
        Assert.False(passkey.TryGetProperty("public_key", out _));
        Assert.Equal("FORBIDDEN", ErrorCode(byUser));
        Assert.Equal(HttpStatusCode.NoContent, removed.Status);
        Assert.Equal("NOT_FOUND", ErrorCode(again));
        Assert.Empty(after.Body.GetProperty("passkeys").EnumerateArray());
        Assert.Contains(audit.Body.GetProperty("entries").EnumerateArray(), e => e.GetProperty("action").GetString() == "passkey.removed");
    }

    [Fact]
    public async Task Users_BadInput_Is4xxAndChangesNothing()
    {
        var admin = await AdminAsync();
        var email = await CreateUserAsync();
        var id = await IdOfAsync(admin, email);

        var junk = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new StringContent("{\"name\":", Encoding.UTF8, "application/json"));
        var wrongType = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new StringContent("{\"name\":[1]}", Encoding.UTF8, "application/json"));
        var badEmail = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { email = "nope" });
        var unknownUser = await ApiAsync(HttpMethod.Get, "/api/v1/users/does-not-exist", admin);
        var unknownRole = await ApiAsync(HttpMethod.Post, $"/api/v1/users/{id}/roles", admin, new { role_id = "no-such-role" });
        var weak = await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email = $"weak-{Guid.NewGuid():N}@example.test", password = "short" });
        var taken = await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email, password = Password });
        var wrongMethod = await ApiAsync(HttpMethod.Patch, "/api/v1/users", admin);
        var nul = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { name = "a\u0000b" });
        var reversed = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { name = "\u202Eevil" });

        Assert.Equal("INVALID_REQUEST", ErrorCode(junk));
        Assert.Equal("INVALID_REQUEST", ErrorCode(wrongType));
        Assert.Equal("INVALID_REQUEST", ErrorCode(badEmail));
        Assert.Equal("NOT_FOUND", ErrorCode(unknownUser));
        Assert.Equal("INVALID_REQUEST", ErrorCode(unknownRole));
        Assert.Equal("INVALID_REQUEST", ErrorCode(weak));
        Assert.Equal("CONFLICT", ErrorCode(taken));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(wrongMethod));
        Assert.Equal("INVALID_REQUEST", ErrorCode(nul));
        Assert.Equal("INVALID_REQUEST", ErrorCode(reversed));
        var unchanged = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin);
        Assert.Equal(email, unchanged.Body.GetProperty("user").GetProperty("email").GetString());
        Assert.Equal("Test User", unchanged.Body.GetProperty("user").GetProperty("name").GetString());
    }

    /// <summary>A client's malformed request is answered with a 400 and is not logged as a server failure with its stack.</summary>
    [Fact]
    public async Task MalformedRequests_AreNotLoggedAsServerErrors()
    {
        var logs = new CapturedLogs();
        await using var app = Factory.WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(logs)));
        using var http = app.CreateClient();
        var admin = await AdminAsync();
        var id = await IdOfAsync(admin, await CreateUserAsync());
        using var junk = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/users/{id}") { Content = new StringContent("{\"name\":", Encoding.UTF8, "application/json") };
        junk.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", admin);

        var badJson = await http.SendAsync(junk);
        var badForm = await http.PostAsync("/connect/token", new StringContent("grant_type=password&username=%00", Encoding.UTF8, "application/x-www-form-urlencoded"));

        Assert.Equal(HttpStatusCode.BadRequest, badJson.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badForm.StatusCode);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task Api_RefusesUnsignedAndWrongAudienceTokens()
    {
        var real = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var payload = real.Split('.')[1];
        var unsigned = $"{Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode("{\"alg\":\"none\",\"typ\":\"at+jwt\"}")}.{payload}.";
        var otherApi = await PasswordGrantAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword, ServerFactory.DownstreamScope);

        Assert.Equal("UNAUTHORIZED", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/users", unsigned)));
        Assert.Equal("UNAUTHORIZED", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/users", otherApi.AccessToken)));
        Assert.Equal("UNAUTHORIZED", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/users", "Bearer")));
    }

    [Fact]
    public async Task OpenApi_DescribesTheApiAndHasAReferencePage()
    {
        var document = await ApiAsync(HttpMethod.Get, "/openapi/v1.json");
        var page = await Http.GetAsync("/scalar/v1");

        Assert.Equal(HttpStatusCode.OK, document.Status);
        var paths = document.Body.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        foreach (var path in new[] { "/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh", "/api/v1/auth/me",
                     "/api/v1/users", "/api/v1/users/{id}", "/api/v1/users/{id}/roles", "/api/v1/roles", "/api/v1/permissions" })
            Assert.Contains(path, paths);
        Assert.DoesNotContain(paths, p => p.StartsWith("/connect"));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }
}
