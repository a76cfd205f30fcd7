using System.Net;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Identity.Server.Tests.Clients;

public sealed class SqliteClientLifetimesTests(SqliteServer server) : ClientLifetimesTests<SqliteServer>(server);
public sealed class PostgreSqlClientLifetimesTests(PostgreSqlServer server) : ClientLifetimesTests<PostgreSqlServer>(server);

/// <summary>
/// A client's own token lifetimes (Keycloak's per-client lifespans, Duende's AccessTokenLifetime and
/// SlidingRefreshTokenLifetime): set in seconds through the clients API, they replace the server's for that client only.
/// </summary>
public abstract class ClientLifetimesTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    const string Site = "https://lifetimes.example.test";

    async Task<TimeSpan> ServiceTokenLifetimeAsync(string clientId, string secret)
    {
        var token = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Scope = ServerFactory.DownstreamScope,
        });
        Assert.False(token.IsError, token.Error);
        var jwt = new JsonWebToken(token.AccessToken);
        // expires_in counts from when the answer was written: the same, or a second less across a second's boundary.
        Assert.InRange(token.ExpiresIn, (int)(jwt.ValidTo - jwt.IssuedAt).TotalSeconds - 1, (int)(jwt.ValidTo - jwt.IssuedAt).TotalSeconds);
        return jwt.ValidTo - jwt.IssuedAt;
    }

    [Fact]
    public async Task AccessTokenLifetime_OfAClient_IsItsTokensLifetime_AndStaysThroughOtherChanges()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = $"short-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope }, access_token_lifetime = 300,
        });
        var secret = created.Body.GetProperty("client_secret").GetString()!;
        var first = await ServiceTokenLifetimeAsync(clientId, secret);
        var changed = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { access_token_lifetime = 120 });
        var renamed = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { display_name = "Renamed" });
        var second = await ServiceTokenLifetimeAsync(clientId, secret);

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(300, created.Body.GetProperty("client").GetProperty("access_token_lifetime").GetInt64());
        Assert.Equal(TimeSpan.FromSeconds(300), first);
        Assert.Equal(120, changed.Body.GetProperty("client").GetProperty("access_token_lifetime").GetInt64());
        Assert.Equal(120, renamed.Body.GetProperty("client").GetProperty("access_token_lifetime").GetInt64());
        Assert.Equal(TimeSpan.FromSeconds(120), second);
        // Other clients keep the server's hour.
        Assert.Equal(TimeSpan.FromHours(1), await ServiceTokenLifetimeAsync(ServerFactory.Service, ServerFactory.ServiceSecret));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, (await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{ServerFactory.Service}", admin)).Body
            .GetProperty("client").GetProperty("access_token_lifetime").ValueKind);
    }

    [Fact]
    public async Task RefreshTokenLifetime_OfAClient_IsItsRefreshTokensLifetime_AtEveryRefresh()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = $"app-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, consent_type = "implicit", grant_types = new[] { "authorization_code", "refresh_token" },
            redirect_uris = new[] { Site + "/callback" }, scopes = new[] { "openid", "offline_access" }, refresh_token_lifetime = 600,
        });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var client = OidcClientFor(clientId, Site + "/callback", "openid offline_access");
        var signedIn = await SignInThroughAsync(new Browser(Factory), client, await CreateUserAsync());

        var refreshed = await client.RefreshTokenAsync(signedIn.RefreshToken);

        Assert.Equal(TimeSpan.FromSeconds(600), await RefreshTokenLifetimeAsync(signedIn.RefreshToken));
        Assert.False(refreshed.IsError, refreshed.Error);
        Assert.Equal(TimeSpan.FromSeconds(600), await RefreshTokenLifetimeAsync(refreshed.RefreshToken));

        // Dropping the grant drops its lifetime with it, rather than refusing the change.
        var withoutRefresh = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { grant_types = new[] { "authorization_code" } });
        Assert.Equal(HttpStatusCode.OK, withoutRefresh.Status);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, withoutRefresh.Body.GetProperty("client").GetProperty("refresh_token_lifetime").ValueKind);
    }

    [Theory]
    [InlineData("""{"grant_types":["client_credentials"],"access_token_lifetime":30}""", "access_token_lifetime")]
    [InlineData("""{"grant_types":["client_credentials"],"access_token_lifetime":864000}""", "access_token_lifetime")]
    [InlineData("""{"grant_types":["client_credentials"],"access_token_lifetime":-5}""", "access_token_lifetime")]
    [InlineData("""{"grant_types":["client_credentials"],"access_token_lifetime":9223372036854775807}""", "access_token_lifetime")]
    [InlineData("""{"grant_types":["client_credentials"],"refresh_token_lifetime":3600}""", "refresh_token_lifetime")]
    [InlineData("""{"public":true,"grant_types":["authorization_code","refresh_token"],"redirect_uris":["https://x.example.test/cb"],"refresh_token_lifetime":60}""", "refresh_token_lifetime")]
    public async Task LifetimesOutOfRange_AreRefused_WithTheField(string json, string field)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var body = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        body["client_id"] = $"bad-{Guid.NewGuid():N}";

        var refused = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, body);

        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Equal(field, refused.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{body["client_id"]}", admin)).Status);
    }
}
