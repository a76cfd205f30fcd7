using System.Net;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Clients;

public sealed class SqliteSecretRotationTests(SqliteServer server) : SecretRotationTests<SqliteServer>(server);
public sealed class PostgreSqlSecretRotationTests(PostgreSqlServer server) : SecretRotationTests<PostgreSqlServer>(server);

/// <summary>
/// Rotating a client's secret with a grace period (Keycloak's rotated secret expiration): the replaced secret works
/// until then, so a fleet can take up the new one without an outage; without one it stops at once.
/// </summary>
public abstract class SecretRotationTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    async Task<(string Admin, string ClientId, string Secret)> NewServiceAsync()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = $"fleet-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope },
        });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        return (admin, clientId, created.Body.GetProperty("client_secret").GetString()!);
    }

    async Task<bool> WorksAsync(string clientId, string secret) => !(await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
    {
        Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Scope = ServerFactory.DownstreamScope,
    })).IsError;

    [Fact]
    public async Task WithAGracePeriod_BothSecretsWork_UntilTheNextRotationWithoutOne()
    {
        var (admin, clientId, first) = await NewServiceAsync();
        Assert.True(await WorksAsync(clientId, first));

        var rotated = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{clientId}/secret", admin, new { previous_secret_lifetime = 3600 });
        var second = rotated.Body.GetProperty("client_secret").GetString()!;
        var renamed = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { display_name = "Fleet" });

        Assert.Equal(HttpStatusCode.OK, rotated.Status);
        var expires = rotated.Body.GetProperty("client").GetProperty("previous_secret_expires_at").GetDateTimeOffset();
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(61));
        Assert.Equal(HttpStatusCode.OK, renamed.Status);
        Assert.True(await WorksAsync(clientId, second));
        Assert.True(await WorksAsync(clientId, first));
        Assert.False(await WorksAsync(clientId, "not-a-secret-of-this-client"));

        var again = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{clientId}/secret", admin);
        var third = again.Body.GetProperty("client_secret").GetString()!;

        Assert.Equal(System.Text.Json.JsonValueKind.Null, again.Body.GetProperty("client").GetProperty("previous_secret_expires_at").ValueKind);
        Assert.True(await WorksAsync(clientId, third));
        Assert.False(await WorksAsync(clientId, second));
        Assert.False(await WorksAsync(clientId, first));
    }

    [Fact]
    public async Task TheReplacedSecret_StopsWhenItsGracePeriodEnds()
    {
        var (admin, clientId, first) = await NewServiceAsync();
        Assert.True(await WorksAsync(clientId, first));

        var rotated = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{clientId}/secret", admin, new { previous_secret_lifetime = 2 });
        var during = await WorksAsync(clientId, first);
        await Task.Delay(TimeSpan.FromSeconds(2.5));

        Assert.True(during);
        Assert.False(await WorksAsync(clientId, first));
        Assert.True(await WorksAsync(clientId, rotated.Body.GetProperty("client_secret").GetString()!));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(7 * 24 * 3600 + 1)]
    public async Task AGracePeriodOutOfRange_IsRefused_AndTheSecretStays(long seconds)
    {
        var (admin, clientId, first) = await NewServiceAsync();

        var refused = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{clientId}/secret", admin, new { previous_secret_lifetime = seconds });

        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Equal("previous_secret_lifetime", refused.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.True(await WorksAsync(clientId, first));
    }
}
