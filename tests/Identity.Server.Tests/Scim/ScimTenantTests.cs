using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Scim;

public sealed class SqliteScimTenantTests(SqliteServer server) : ScimTenantTests<SqliteServer>(server);
public sealed class PostgreSqlScimTenantTests(PostgreSqlServer server) : ScimTenantTests<PostgreSqlServer>(server);

/// <summary>
/// A tenant's own directory (a SCIM client with scim_organization): it provisions its organization's users and
/// groups and cannot see, reach or take over anything else.
/// </summary>
public abstract class ScimTenantTests<TFactory>(TFactory factory) : ScimTestsBase<TFactory>(factory) where TFactory : ServerFactory
{
    static string NewDomain() => $"tenant-{Guid.NewGuid():N}.example";

    /// <summary>A SCIM client for <paramref name="domain"/>, registered through /api/v1/clients; its token.</summary>
    async Task<string> TenantTokenAsync(string domain)
    {
        var clientId = $"scim-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", await AdminAsync(), new
        {
            client_id = clientId, grant_types = new[] { "client_credentials" }, scopes = new[] { "scim" }, scim_organization = domain,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        Assert.Equal(domain, created.Body.GetProperty("client").GetProperty("scim_organization").GetString());
        var token = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = created.Body.GetProperty("client_secret").GetString(), Scope = "scim",
        });
        Assert.False(token.IsError, token.Error);
        return token.AccessToken!;
    }

    static object User(string email) => new { schemas = new[] { UserSchema }, userName = email };

    [Fact]
    public async Task Tenant_ProvisionsItsOrganizationsUsersOnly()
    {
        var domain = NewDomain();
        var tenant = await TenantTokenAsync(domain);
        var elsewhere = Id(await CreateScimUserAsync(NewEmail()));       // by the server-wide directory

        var own = await SendAsync(HttpMethod.Post, "/scim/v2/Users", tenant, User($"ada@{domain}"));
        var foreign = await SendAsync(HttpMethod.Post, "/scim/v2/Users", tenant, User(NewEmail()));
        var list = await SendAsync(HttpMethod.Get, "/scim/v2/Users?count=200", tenant);
        var readElsewhere = await SendAsync(HttpMethod.Get, $"/scim/v2/Users/{elsewhere}", tenant);
        var patchElsewhere = await SendAsync(HttpMethod.Patch, $"/scim/v2/Users/{elsewhere}", tenant, Patch("""{"op":"replace","path":"active","value":false}"""));
        var moveOut = await SendAsync(HttpMethod.Patch, $"/scim/v2/Users/{Id(own.Body)}", tenant,
            Patch($$"""{"op":"replace","path":"userName","value":"{{NewEmail()}}"}"""));

        Assert.Equal(HttpStatusCode.Created, own.Status);
        Assert.Equal("invalidValue", ScimError(foreign, HttpStatusCode.BadRequest));
        Assert.Equal([$"ada@{domain}"], Resources(list.Body).Select(u => u.GetProperty("userName").GetString()));
        Assert.Null(ScimError(readElsewhere, HttpStatusCode.NotFound));
        Assert.Null(ScimError(patchElsewhere, HttpStatusCode.NotFound));
        Assert.Equal("invalidValue", ScimError(moveOut, HttpStatusCode.BadRequest));
        Assert.True(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{elsewhere}")).GetProperty("active").GetBoolean());
    }

    /// <summary>A server admin whose address is at the tenant's domain is visible to the tenant's directory, not changeable by it.</summary>
    [Fact]
    public async Task Tenant_CannotChangeAnAccountWithServerWideRoles()
    {
        var domain = NewDomain();
        var tenant = await TenantTokenAsync(domain);
        var rootEmail = await CreateUserInAsync(domain, "admin");
        var root = Id(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Uri.EscapeDataString($"userName eq \"{rootEmail}\"")}")))[0]);

        var read = await SendAsync(HttpMethod.Get, $"/scim/v2/Users/{root}", tenant);
        var deactivate = await SendAsync(HttpMethod.Patch, $"/scim/v2/Users/{root}", tenant, Patch("""{"op":"replace","path":"active","value":false}"""));
        var delete = await SendAsync(HttpMethod.Delete, $"/scim/v2/Users/{root}", tenant);

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Null(ScimError(deactivate, HttpStatusCode.Forbidden));
        Assert.Null(ScimError(delete, HttpStatusCode.Forbidden));
        Assert.Equal(HttpStatusCode.OK, await LoginStatusAsync(rootEmail));
    }

    /// <summary>Two tenants may each have "Engineering"; neither sees the other's, adds the other's users, or shares its policy entity.</summary>
    [Fact]
    public async Task Tenant_GroupsAreItsOwn_EvenWithTheSameName()
    {
        var (domainA, domainB) = (NewDomain(), NewDomain());
        var (tenantA, tenantB) = (await TenantTokenAsync(domainA), await TenantTokenAsync(domainB));
        var userA = Id((await SendAsync(HttpMethod.Post, "/scim/v2/Users", tenantA, User($"dev@{domainA}"))).Body);
        var userB = Id((await SendAsync(HttpMethod.Post, "/scim/v2/Users", tenantB, User($"dev@{domainB}"))).Body);

        var groupA = await SendAsync(HttpMethod.Post, "/scim/v2/Groups", tenantA, new { displayName = "Engineering", members = new[] { new { value = userA } } });
        var groupB = await SendAsync(HttpMethod.Post, "/scim/v2/Groups", tenantB, new { displayName = "Engineering", members = new[] { new { value = userB } } });
        var listA = await SendAsync(HttpMethod.Get, "/scim/v2/Groups?filter=" + Uri.EscapeDataString("displayName eq \"engineering\""), tenantA);
        var readB = await SendAsync(HttpMethod.Get, $"/scim/v2/Groups/{Id(groupB.Body)}", tenantA);
        var foreignMember = await SendAsync(HttpMethod.Patch, $"/scim/v2/Groups/{Id(groupA.Body)}", tenantA,
            Patch($$"""{"op":"add","path":"members","value":[{"value":"{{userB}}"}]}"""));

        Assert.Equal(HttpStatusCode.Created, groupA.Status);
        Assert.Equal(HttpStatusCode.Created, groupB.Status);
        Assert.Equal([Id(groupA.Body)], Resources(listA.Body).Select(Id));
        Assert.Null(ScimError(readB, HttpStatusCode.NotFound));
        Assert.Equal("invalidValue", ScimError(foreignMember, HttpStatusCode.BadRequest));

        // In policies the group is named with its domain: a rule for tenant A's Engineering does not reach tenant B's.
        var admin = await AdminAsync();
        var policyId = $"tenant-engineering-{Guid.NewGuid():N}";
        var policy = await ApiAsync(HttpMethod.Post, "/api/v1/policies", admin, new
        {
            id = policyId, policy = $$"""permit (principal in Group::"{{domainA}}/Engineering", action == Action::"share", resource is Document);""",
        });
        Assert.True(policy.Status == HttpStatusCode.Created, policy.Body.ToString());
        var decisionA = await ShareDecisionAsync($"dev@{domainA}");
        var decisionB = await ShareDecisionAsync($"dev@{domainB}");
        await ApiAsync(HttpMethod.Delete, $"/api/v1/policies/{policyId}", admin);
        Assert.Equal(("Allow", "Deny"), (decisionA, decisionB));
    }

    [Theory]
    [InlineData("gmail.com", "scim")]
    [InlineData("Not A Domain", "scim")]
    [InlineData("acme.example", "identity")]
    public async Task Clients_BadScimOrganization_Is400(string domain, string scope)
    {
        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/clients", await AdminAsync(), new
        {
            grant_types = new[] { "client_credentials" }, scopes = new[] { scope }, scim_organization = domain,
        });

        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        Assert.Equal("scim_organization", answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
    }
}
