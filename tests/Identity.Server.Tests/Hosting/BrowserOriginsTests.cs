using System.Net;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Hosting;

public sealed class SqliteBrowserOriginsTests(SqliteServer server) : BrowserOriginsTests<SqliteServer>(server);
public sealed class PostgreSqlBrowserOriginsTests(PostgreSqlServer server) : BrowserOriginsTests<PostgreSqlServer>(server);

/// <summary>
/// CORS as a browser asks for it: which origins may read which answers. The browser itself enforces the answers
/// (Federation/BrowserTests runs a SPA in Chromium); here, what the server says to each origin.
/// </summary>
public abstract class BrowserOriginsTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    static readonly string SpaOrigin = new Uri(ServerFactory.SpaRedirect).GetLeftPart(UriPartial.Authority);

    async Task<HttpResponseMessage> PreflightAsync(string path, string origin, string method = "POST", string headers = "content-type, dpop")
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        return await Http.SendAsync(request);
    }

    static string? AllowedOrigin(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values) ? values.Single() : null;

    [Theory]
    [InlineData("/connect/token", "POST", "content-type, dpop")]
    [InlineData("/connect/userinfo", "GET", "authorization, dpop")]
    [InlineData("/connect/revoke", "POST", "content-type")]
    [InlineData("/api/v1/auth/me", "GET", "authorization")]
    [InlineData("/api/v1/users/some-id", "DELETE", "authorization")]
    public async Task RegisteredAppOrigins_MayCallTheAppEndpoints_OthersMayNot(string path, string method, string headers)
    {
        var spa = await PreflightAsync(path, SpaOrigin, method, headers);
        var firstParty = await PreflightAsync(path, ServerFactory.FirstPartyOrigin, method, headers);
        var stranger = await PreflightAsync(path, "https://evil.example.test", method, headers);

        Assert.Equal(HttpStatusCode.NoContent, spa.StatusCode);
        Assert.Equal(SpaOrigin, AllowedOrigin(spa));
        Assert.Contains(method, spa.Headers.GetValues("Access-Control-Allow-Methods").Single().Split(','));
        Assert.Equal(ServerFactory.FirstPartyOrigin, AllowedOrigin(firstParty));
        Assert.Null(AllowedOrigin(stranger));
        // Never with cookies.
        Assert.False(spa.Headers.Contains("Access-Control-Allow-Credentials"));
        Assert.Contains("Origin", stranger.Headers.Vary);
    }

    [Fact]
    public async Task AnAnswerReadFromAnotherOrigin_ExposesTheHeadersAClientNeeds()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new FormUrlEncodedContent([new("grant_type", "password")]) };
        request.Headers.Add("Origin", SpaOrigin);

        var response = await Http.SendAsync(request);

        Assert.Equal(SpaOrigin, AllowedOrigin(response));
        var exposed = response.Headers.GetValues("Access-Control-Expose-Headers").Single().Split(',');
        Assert.Contains("DPoP-Nonce", exposed);
        Assert.Contains("WWW-Authenticate", exposed);
        Assert.Contains("Origin", response.Headers.Vary);
    }

    [Theory]
    [InlineData("/.well-known/openid-configuration")]
    [InlineData("/.well-known/jwks")]
    public async Task DiscoveryAndKeys_AreReadableFromAnyOrigin(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Origin", "https://anyone.example.test");

        var response = await Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("*", AllowedOrigin(response));
    }

    /// <summary>The login pages, SCIM and the policy endpoints are not for scripts of other origins, registered or not.</summary>
    [Theory]
    [InlineData("/scim/v2/Users", "GET")]
    [InlineData("/v1/authorize", "POST")]
    [InlineData("/Account/Login", "POST")]
    [InlineData("/connect/introspect", "POST")]
    public async Task OtherEndpoints_NameNoOrigin(string path, string method)
    {
        var response = await PreflightAsync(path, SpaOrigin, method, "authorization");

        Assert.Null(AllowedOrigin(response));
    }

    /// <summary>A client registered through the API brings its redirect origin at once, and takes it away when deleted.</summary>
    [Fact]
    public async Task AClientsRedirectOrigin_IsAllowedOnceItIsRegistered_AndNoLongerOnceItIsDeleted()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = "cors-" + Guid.NewGuid().ToString("N")[..8];
        var origin = $"https://{clientId}.example.test:8443";

        var before = await PreflightAsync("/connect/token", origin);
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, grant_types = new[] { "authorization_code" },
            redirect_uris = new[] { origin + "/callback" }, scopes = new[] { "openid" },
        });
        var registered = await PreflightAsync("/connect/token", origin);
        var deleted = await ApiAsync(HttpMethod.Delete, $"/api/v1/clients/{clientId}", admin);
        var after = await PreflightAsync("/connect/token", origin);

        Assert.Null(AllowedOrigin(before));
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(origin, AllowedOrigin(registered));
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Null(AllowedOrigin(after));
    }
}
