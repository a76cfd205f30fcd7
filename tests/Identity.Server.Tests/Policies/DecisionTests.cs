using System.Net;
using Duende.IdentityModel.Client;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Policies;

public sealed class SqliteDecisionTests(SqliteServer server) : DecisionTests<SqliteServer>(server);
public sealed class PostgreSqlDecisionTests(PostgreSqlServer server) : DecisionTests<PostgreSqlServer>(server);

/// <summary>Calls to the policy decision endpoints as a resource server makes them: client credentials for the identity API.</summary>
public abstract class PolicyServerTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    protected async Task<string> ServiceTokenAsync()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token",
            ClientId = ServerFactory.Service,
            ClientSecret = ServerFactory.ServiceSecret,
            Scope = "identity",
        });
        Assert.False(response.IsError, response.Error);
        return response.AccessToken!;
    }

    protected async Task<(string Decision, string[] Reasons)> AuthorizeAsync(object body)
    {
        var answer = await ApiAsync(HttpMethod.Post, "/v1/authorize", await ServiceTokenAsync(), body);
        Assert.True(answer.Status == HttpStatusCode.OK, $"{answer.Status} {answer.Body}");
        Assert.False(string.IsNullOrEmpty(answer.Body.GetProperty("request_id").GetString()));
        return (answer.Body.GetProperty("decision").GetString()!,
            answer.Body.GetProperty("reasons").EnumerateArray().Select(r => r.GetString()!).ToArray());
    }

}

/// <summary>
/// /v1/authorize with the shipped policies: the seed's examples, tenant isolation that context cannot talk its way
/// around, and the error answers.
/// </summary>
public abstract class DecisionTests<TFactory>(TFactory factory) : PolicyServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    static object SeedRequest(string principal, object? context = null, string action = "read", string resource = "org-acme-doc-001") => new
    {
        principal = new { type = "User", id = principal },
        action = new { type = "Action", id = action },
        resource = new { type = "Document", id = resource },
        context = context ?? new { organization_id = "acme-corp", organization_domain = "acme.com", authenticated = true, jwt_valid = true },
    };

    [Fact]
    public async Task Authorize_AcmeMemberReadsAcmeDocument_Allows()
    {
        var john = await CreateUserInAsync("acme.com");

        var (decision, reasons) = await AuthorizeAsync(SeedRequest(john));

        Assert.Equal("Allow", decision);
        Assert.Equal(["organization-members-read"], reasons);
    }

    /// <summary>Registering an address at acme.com proves nothing: its unverified account reads none of acme's documents.</summary>
    [Fact]
    public async Task Authorize_UnverifiedAddressAtTheDomain_IsNoMember()
    {
        await CreateUserInAsync("acme.com");
        var mallory = $"mallory-{Guid.NewGuid():N}@acme.com";
        var registered = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email = mallory, password = Password });

        var (decision, reasons) = await AuthorizeAsync(SeedRequest(mallory));

        Assert.Equal(HttpStatusCode.OK, registered.Status);
        Assert.Equal("Deny", decision);
        Assert.DoesNotContain("organization-members-read", reasons);
    }

    [Fact]
    public async Task Authorize_CompetitorReadsAcmeDocument_DeniedByTenantIsolation()
    {
        await CreateUserInAsync("acme.com");
        var competitor = await CreateUserInAsync("competitor.com");

        var (decision, reasons) = await AuthorizeAsync(SeedRequest(competitor, new { organization_id = "competitor-org", authenticated = true }));

        Assert.Equal("Deny", decision);
        Assert.Equal(["tenant-isolation"], reasons);
    }

    [Fact]
    public async Task Authorize_SpoofedContext_CannotChangeTheOrganization()
    {
        await CreateUserInAsync("acme.com");
        var competitor = await CreateUserInAsync("competitor.com");

        // The caller claims the competitor is in acme, and adds a forged user entity: neither is believed.
        var (decision, _) = await AuthorizeAsync(SeedRequest(competitor,
            new { organization_id = "acme-corp", organization_domain = "acme.com", group_memberships = new[] { "acme-admins" } }));
        var forged = await ApiAsync(HttpMethod.Post, "/v1/authorize", await ServiceTokenAsync(), new
        {
            principal = new { type = "User", id = competitor },
            action = new { type = "Action", id = "read" },
            resource = new { type = "Document", id = "org-acme-doc-001" },
            entities = new[] { new { uid = new { type = "User", id = competitor }, attrs = new { }, parents = new[] { new { type = "Organization", id = "acme.com" } } } },
        });

        Assert.Equal("Deny", decision);
        Assert.Equal(HttpStatusCode.BadRequest, forged.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(forged));
    }

    [Fact]
    public async Task Authorize_Admin_AllowedAnywhere()
    {
        await CreateUserInAsync("acme.com");

        var (decision, reasons) = await AuthorizeAsync(SeedRequest(ServerFactory.AdminEmail, action: "delete"));

        Assert.Equal("Allow", decision);
        Assert.Equal(["admins-all"], reasons);
    }

    [Fact]
    public async Task Authorize_FactsCachedBetweenDecisions_FollowEveryChangeAtOnce()
    {
        var email = await CreateUserInAsync("acme.com", "admin");
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var id = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(email)}", admin)).Body
            .GetProperty("users").EnumerateArray().Single().GetProperty("id").GetString();

        var asAdmin = await AuthorizeAsync(SeedRequest(email, action: "delete"));
        var again = await AuthorizeAsync(SeedRequest(email, action: "delete"));
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/roles/admin", admin)).Status);
        var demoted = await AuthorizeAsync(SeedRequest(email, action: "delete"));
        Assert.Equal(HttpStatusCode.NoContent, (await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}", admin)).Status);
        var deleted = await AuthorizeAsync(SeedRequest(email));

        Assert.Equal(("Allow", "admins-all"), (asAdmin.Decision, asAdmin.Reasons.Single()));
        Assert.Equal(asAdmin.Decision, again.Decision);
        Assert.Equal("Deny", demoted.Decision);
        Assert.Equal("Deny", deleted.Decision);
    }

    [Fact]
    public async Task Authorize_MemberWritesOwnDocument_DeniedByDefault()
    {
        var john = await CreateUserInAsync("acme.com");

        var (decision, reasons) = await AuthorizeAsync(SeedRequest(john, action: "write"));

        Assert.Equal("Deny", decision);
        Assert.Empty(reasons);
    }

    [Fact]
    public async Task Authorize_ByUserIdWithResourceAttributes_UsesTheGivenOrganization()
    {
        var email = await CreateUserInAsync("attrs.example");
        string id;
        using (var scope = Factory.Services.CreateScope())
            id = (await scope.ServiceProvider.GetRequiredService<UserManager<User>>().FindByEmailAsync(email))!.Id;

        var own = await AuthorizeAsync(new
        {
            principal = new { type = "User", id },
            action = new { type = "Action", id = "read" },
            resource = new { type = "Document", id = "report-7", attributes = new { organization_domain = "attrs.example", classification = "internal" } },
        });
        var other = await AuthorizeAsync(new
        {
            principal = new { type = "User", id },
            action = new { type = "Action", id = "read" },
            resource = new { type = "Document", id = "report-8", attributes = new { organization = new { type = "Organization", id = "elsewhere.example" } } },
        });

        Assert.Equal("Allow", own.Decision);
        Assert.Equal("Deny", other.Decision);
        Assert.Equal(["tenant-isolation"], other.Reasons);
    }

    [Fact]
    public async Task Authorize_UnknownUser_Denied()
    {
        var (decision, reasons) = await AuthorizeAsync(SeedRequest("nobody@acme.com"));

        Assert.Equal("Deny", decision);
        Assert.Empty(reasons);
    }

    /// <summary>
    /// Decisions are for services: an end user's token would let anyone ask whether an account exists and what it
    /// holds. The other way round, the /api/v1 APIs act for a user, and a service's token gets the same clear 403.
    /// </summary>
    [Fact]
    public async Task Decisions_AreForServices_AndTheAccountApisForUsers()
    {
        var member = await CreateUserInAsync("acme.com");
        var userToken = await LoginAsync(member);
        var serviceToken = await ServiceTokenAsync();

        var byUser = await ApiAsync(HttpMethod.Post, "/v1/authorize", userToken, SeedRequest(member));
        var authZenByUser = await ApiAsync(HttpMethod.Post, "/access/v1/evaluation", userToken,
            new { subject = new { type = "user", id = member }, action = new { name = "read" }, resource = new { type = "document", id = "org-acme-doc-001" } });
        var usersByService = await ApiAsync(HttpMethod.Get, "/api/v1/users", serviceToken);
        var sessionsByService = await ApiAsync(HttpMethod.Get, "/api/v1/sessions", serviceToken);
        var meByService = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", serviceToken);

        Assert.Equal("FORBIDDEN", ErrorCode(byUser));
        Assert.Equal("FORBIDDEN", ErrorCode(authZenByUser));
        Assert.Equal("FORBIDDEN", ErrorCode(usersByService));
        Assert.Equal("FORBIDDEN", ErrorCode(sessionsByService));
        Assert.Equal("FORBIDDEN", ErrorCode(meByService));
    }

    [Fact]
    public async Task Authorize_Anonymous_Returns401Envelope()
    {
        var answer = await ApiAsync(HttpMethod.Post, "/v1/authorize", body: SeedRequest("john.doe@acme.com"));

        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.Equal("UNAUTHORIZED", ErrorCode(answer));
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[]")]
    [InlineData("{\"principal\":{\"type\":\"User\"},\"action\":{\"type\":\"Action\",\"id\":\"read\"},\"resource\":{\"type\":\"Document\",\"id\":\"d\"}}")]
    [InlineData("{\"principal\":{\"type\":\"User\",\"id\":\"x\"},\"action\":{\"type\":\"Action\",\"id\":\"read\"}}")]
    [InlineData("{\"principal\":{\"type\":\"User\",\"id\":\"x\"},\"action\":{\"type\":\"Action\",\"id\":\"read\"},\"resource\":{\"type\":\"Document\",\"id\":\"d\"},\"context\":[1]}")]
    [InlineData("{\"principal\":{\"type\":\"User\",\"id\":\"\\ud800\"},\"action\":{\"type\":\"Action\",\"id\":\"read\"},\"resource\":{\"type\":\"Document\",\"id\":\"d\"}}")]
    // Only users act: a role, an organization or a caller-made entity placed under Role::"admin" would pass admins-all.
    [InlineData("{\"principal\":{\"type\":\"Role\",\"id\":\"admin\"},\"action\":{\"type\":\"Action\",\"id\":\"delete\"},\"resource\":{\"type\":\"Document\",\"id\":\"org-acme-doc-1\"}}")]
    [InlineData("{\"principal\":{\"type\":\"Organization\",\"id\":\"acme.com\"},\"action\":{\"type\":\"Action\",\"id\":\"read\"},\"resource\":{\"type\":\"Document\",\"id\":\"d\"}}")]
    [InlineData("{\"principal\":{\"type\":\"Service\",\"id\":\"s\"},\"action\":{\"type\":\"Action\",\"id\":\"delete\"},\"resource\":{\"type\":\"Document\",\"id\":\"d\"},\"entities\":[{\"uid\":{\"type\":\"Service\",\"id\":\"s\"},\"attrs\":{},\"parents\":[{\"type\":\"Role\",\"id\":\"admin\"}]}]}")]
    public async Task Authorize_MalformedBody_Returns400Envelope(string json)
    {
        var answer = await ApiAsync(HttpMethod.Post, "/v1/authorize", await ServiceTokenAsync(),
            new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
    }
}
