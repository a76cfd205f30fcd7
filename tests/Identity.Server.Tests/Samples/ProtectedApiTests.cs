using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Samples;

/// <summary>
/// A third-party API (samples/ProtectedApi, stock JwtBearer) trusting this server's tokens through discovery and
/// JWKS alone: the issuer-of-bearer-tokens use case end to end.
/// </summary>
public sealed class ProtectedApiTests(SqliteServer identity) : ServerTests<SqliteServer>(identity), IDisposable
{
    readonly WebApplicationFactory<ProtectedApi.Program> api = new WebApplicationFactory<ProtectedApi.Program>().WithWebHostBuilder(builder =>
        builder.ConfigureServices(services => services.Configure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, jwt =>
        {
            jwt.Authority = identity.Server.BaseAddress.ToString();
            jwt.Audience = ServerFactory.DownstreamAudience;
            jwt.RequireHttpsMetadata = false;
            jwt.BackchannelHttpHandler = identity.Server.CreateHandler();
        })));

    public void Dispose() => api.Dispose();

    async Task<HttpResponseMessage> GetOrdersAsync(string? token)
    {
        var http = api.CreateClient();
        if (token is not null)
            http.SetBearerToken(token);
        return await http.GetAsync("/orders");
    }

    Task<TokenResponse> ServiceTokenAsync(string scope) => Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
    {
        Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = scope,
    });

    [Fact]
    public async Task ProtectedApi_AcceptsTokenForItsAudience()
    {
        var token = await ServiceTokenAsync(ServerFactory.DownstreamScope);

        var response = await GetOrdersAsync(token.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(ServerFactory.Service, body.RootElement.GetProperty("caller").GetString());
    }

    [Fact]
    public async Task ProtectedApi_RefusesTokenForAnotherAudienceOrNone()
    {
        var forIdentity = await ServiceTokenAsync("identity");

        Assert.Equal(HttpStatusCode.Unauthorized, (await GetOrdersAsync(forIdentity.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetOrdersAsync(null)).StatusCode);
    }

    [Fact]
    public async Task ProtectedApi_AcceptsUserTokenFromPasswordGrant()
    {
        var token = await PasswordGrantAsync(await CreateUserAsync(), scope: ServerFactory.DownstreamScope);

        Assert.Equal(HttpStatusCode.OK, (await GetOrdersAsync(token.AccessToken)).StatusCode);
    }
}
