using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Clients;

public sealed class SqliteClientsApiTests(SqliteServer server) : ClientsApiTests<SqliteServer>(server);
public sealed class PostgreSqlClientsApiTests(PostgreSqlServer server) : ClientsApiTests<PostgreSqlServer>(server);

/// <summary>/api/v1/clients: clients registered at run time work at once with real OAuth clients, and stop at once.</summary>
public abstract class ClientsApiTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    static string NewClientId() => $"app-{Guid.NewGuid():N}";

    Task<TokenResponse> ClientCredentialsAsync(string clientId, string? secret) =>
        Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Scope = ServerFactory.DownstreamScope,
        });

    [Fact]
    public async Task Clients_ConcurrentChanges_AreNeverAServerError_AndTheClientKeepsWorking()
    {
        var admin = await AdminAsync();
        var clientId = NewClientId();
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope },
        });

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { display_name = $"Renamed {i}" })));

        Assert.All(answers, a => Assert.Contains(a.Status, new[] { HttpStatusCode.OK, HttpStatusCode.Conflict }));
        Assert.Contains(answers, a => a.Status == HttpStatusCode.OK);
        Assert.All(answers.Where(a => a.Status == HttpStatusCode.Conflict), a => Assert.Equal("CONFLICT", a.Body.GetProperty("error").GetProperty("code").GetString()));
        var tokens = await ClientCredentialsAsync(clientId, created.Body.GetProperty("client_secret").GetString());
        Assert.False(tokens.IsError, tokens.Error);
    }

    [Fact]
    public async Task Clients_Confidential_CreateUseRotateDelete()
    {
        var admin = await AdminAsync();
        var clientId = NewClientId();

        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, display_name = "Billing", grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope },
        });
        var secret = created.Body.GetProperty("client_secret").GetString()!;
        var first = await ClientCredentialsAsync(clientId, secret);
        var renamed = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { display_name = "Billing job" });
        var afterRename = await ClientCredentialsAsync(clientId, secret);
        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin);
        var rotated = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{clientId}/secret", admin);
        var newSecret = rotated.Body.GetProperty("client_secret").GetString()!;
        var withOld = await ClientCredentialsAsync(clientId, secret);
        var withNew = await ClientCredentialsAsync(clientId, newSecret);
        var deleted = await ApiAsync(HttpMethod.Delete, $"/api/v1/clients/{clientId}", admin);
        var afterDelete = await ClientCredentialsAsync(clientId, newSecret);

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal($"/api/v1/clients/{clientId}", created.Response.Headers.Location!.ToString());
        Assert.Equal("confidential", created.Body.GetProperty("client").GetProperty("client_type").GetString());
        Assert.True(secret.Length >= 43, "a 256-bit secret");
        Assert.False(first.IsError, first.Error);
        Assert.Equal(ServerFactory.DownstreamAudience, (await ValidateJwtAsync(first.AccessToken!, ServerFactory.DownstreamAudience)).Audiences.Single());
        // A change that does not touch the secret keeps it.
        Assert.Equal(HttpStatusCode.OK, renamed.Status);
        Assert.False(afterRename.IsError, afterRename.Error);
        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.False(read.Body.TryGetProperty("client_secret", out var shown) && shown.ValueKind != System.Text.Json.JsonValueKind.Null);
        Assert.Equal("Billing job", read.Body.GetProperty("client").GetProperty("display_name").GetString());
        Assert.Equal(["client_credentials"], read.Body.GetProperty("client").GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));
        Assert.NotEqual(secret, newSecret);
        // invalid_client comes with 401 (RFC 6749 §5.2), which the client library reports as an HTTP error.
        Assert.Equal(HttpStatusCode.Unauthorized, withOld.HttpStatusCode);
        Assert.Contains("invalid_client", withOld.Raw);
        Assert.False(withNew.IsError, withNew.Error);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, afterDelete.HttpStatusCode);
        Assert.Equal("NOT_FOUND", ErrorCode(await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin)));
        var audit = await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=100", admin);
        var actions = audit.Body.GetProperty("entries").EnumerateArray()
            .Where(e => e.GetProperty("details").ToString().Contains(clientId)).Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Equal(["client.deleted", "client.secret_rotated", "client.updated", "client.created"], actions);
    }

    /// <summary>A public client registered at run time signs users in through the code flow, with PKCE and its exact redirect URI.</summary>
    [Fact]
    public async Task Clients_Public_CodeFlowWithPkce_AndItsRedirectUrisOnly()
    {
        var admin = await AdminAsync();
        var clientId = NewClientId();
        const string redirect = "https://app.example.test/callback";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, display_name = "Partner app", @public = true, grant_types = new[] { "authorization_code", "refresh_token" },
            redirect_uris = new[] { redirect }, scopes = new[] { "openid", "profile", "email", "offline_access", "identity" },
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        var email = await CreateUserAsync();
        OidcClient Client(string redirectUri) => new(new OidcClientOptions
        {
            Authority = Issuer, ClientId = clientId, RedirectUri = redirectUri, Scope = "openid profile email offline_access identity",
            HttpClientFactory = _ => Factory.CreateClient(), DisablePushedAuthorization = true,
        });
        var browser = new Browser(Factory);

        var state = await Client(redirect).PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await Client(redirect).ProcessResponseAsync(back.LeftTo!.ToString(), state);
        var elsewhere = await browser.OpenAsync((await Client("https://evil.example.test/callback").PrepareLoginAsync()).StartUrl);
        var changed = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { redirect_uris = new[] { "https://app.example.test/v2/callback" } });
        var oldRedirect = await browser.OpenAsync((await Client(redirect).PrepareLoginAsync()).StartUrl);

        Assert.Null(created.Body.GetProperty("client_secret").GetString());
        Assert.Contains("Partner app", consent.Document!.Body!.TextContent);
        Assert.False(result.IsError, result.Error);
        Assert.Equal(email, result.User.FindFirst("email")?.Value);
        Assert.NotNull(result.RefreshToken);
        Assert.Null(elsewhere.LeftTo);
        Assert.Contains("redirect_uri", elsewhere.Body);
        Assert.Equal(HttpStatusCode.OK, changed.Status);
        Assert.Equal(["https://app.example.test/v2/callback"], changed.Body.GetProperty("client").GetProperty("redirect_uris").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal(["authorization_code", "refresh_token"], changed.Body.GetProperty("client").GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));
        Assert.Null(oldRedirect.LeftTo);
    }

    /// <summary>
    /// RFC 9126: a client that must push its authorization requests signs in through a real OidcClient that pushes
    /// (the browser sees only client_id and a request_uri), and a request sent the old way, in the URL, is refused.
    /// </summary>
    [Fact]
    public async Task Clients_RequiringPushedAuthorization_SignInByPushingOnly()
    {
        var admin = await AdminAsync();
        var clientId = NewClientId();
        const string redirect = "https://par.example.test/callback";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, grant_types = new[] { "authorization_code" }, redirect_uris = new[] { redirect },
            scopes = new[] { "openid", "email" }, require_pushed_authorization_requests = true,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        OidcClient Client(bool push) => new(new OidcClientOptions
        {
            Authority = Issuer, ClientId = clientId, RedirectUri = redirect, Scope = "openid email",
            HttpClientFactory = _ => Factory.CreateClient(), DisablePushedAuthorization = !push,
        });
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);

        var pushed = await Client(push: true).PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(pushed.StartUrl), email, Password);
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await Client(push: true).ProcessResponseAsync(back.LeftTo!.ToString(), pushed);
        var inTheUrl = await browser.OpenAsync((await Client(push: false).PrepareLoginAsync()).StartUrl);

        Assert.True(created.Body.GetProperty("client").GetProperty("require_pushed_authorization_requests").GetBoolean());
        Assert.Equal(["client_id", "request_uri"], QueryHelpers.ParseQuery(new Uri(pushed.StartUrl).Query).Keys.Order());
        Assert.Contains("See your email address", consent.Document!.Body!.TextContent);
        Assert.False(result.IsError, result.Error);
        Assert.Equal(email, result.User.FindFirst("email")?.Value);
        Assert.Equal(HttpStatusCode.BadRequest, inTheUrl.Status);
        Assert.Null(inTheUrl.LeftTo);
        Assert.Contains("invalid_request", inTheUrl.Body);
    }

    [Theory]
    [InlineData("""{"grant_types":["password"],"scopes":["openid"]}""", "grant_types")]
    [InlineData("""{"grant_types":["implicit"]}""", "grant_types")]
    [InlineData("""{"grant_types":[]}""", "grant_types")]
    [InlineData("""{"grant_types":[null]}""", "grant_types")]
    [InlineData("""{"grant_types":["client_credentials"],"scopes":[null]}""", "scopes")]
    [InlineData("""{"public":true,"grant_types":["client_credentials"]}""", "grant_types")]
    [InlineData("""{"grant_types":["authorization_code"]}""", "redirect_uris")]
    [InlineData("""{"grant_types":["authorization_code"],"redirect_uris":["http://app.example.test/cb"]}""", "redirect_uris")]
    [InlineData("""{"grant_types":["authorization_code"],"redirect_uris":["https://app.example.test/cb#x"]}""", "redirect_uris")]
    [InlineData("""{"grant_types":["authorization_code"],"redirect_uris":["javascript:alert(1)"]}""", "redirect_uris")]
    [InlineData("""{"grant_types":["client_credentials"],"scopes":["no-such-scope"]}""", "scopes")]
    [InlineData("""{"grant_types":["client_credentials"],"backchannel_logout_uri":"http://rp.example.test/logout"}""", "backchannel_logout_uri")]
    [InlineData("""{"grant_types":["client_credentials"],"backchannel_logout_uri":"com.example.app:/logout"}""", "backchannel_logout_uri")]
    [InlineData("""{"client_id":"a b","grant_types":["client_credentials"]}""", "client_id")]
    [InlineData("""{"grant_types":["client_credentials"],"consent_type":"sometimes"}""", "consent_type")]
    [InlineData("""{"grant_types":["client_credentials"],"require_pushed_authorization_requests":true}""", "require_pushed_authorization_requests")]
    [InlineData("""{"grant_types":["client_credentials"],"display_name":"bad\u0000name"}""", "display_name")]
    public async Task Clients_BadRegistration_Is400NamingTheField(string json, string field)
    {
        var admin = await AdminAsync();
        var before = await ApiAsync(HttpMethod.Get, "/api/v1/clients", admin);

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        var after = await ApiAsync(HttpMethod.Get, "/api/v1/clients", admin);

        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        Assert.Equal(field, answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Equal(before.Body.GetProperty("clients").GetArrayLength(), after.Body.GetProperty("clients").GetArrayLength());
    }

    [Fact]
    public async Task Clients_LoopbackAndNativeRedirects_AreAccepted_DuplicateIdIs409()
    {
        var admin = await AdminAsync();
        var clientId = NewClientId();
        var body = new
        {
            client_id = clientId, @public = true, grant_types = new[] { "authorization_code" },
            redirect_uris = new[] { "http://127.0.0.1:8765/cb", "http://localhost/cb", "com.example.app:/oauth2redirect" },
        };

        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, body);
        var again = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, body);

        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        Assert.Equal("CONFLICT", ErrorCode(again));
    }

    [Fact]
    public async Task Clients_FromConfiguration_AreShownButReadOnly()
    {
        var admin = await AdminAsync();

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/clients", admin);
        var update = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{ServerFactory.Web}", admin, new { display_name = "Hijacked" });
        var rotate = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{ServerFactory.Service}/secret", admin);
        var delete = await ApiAsync(HttpMethod.Delete, $"/api/v1/clients/{ServerFactory.Service}", admin);

        var web = list.Body.GetProperty("clients").EnumerateArray().Single(c => c.GetProperty("client_id").GetString() == ServerFactory.Web);
        Assert.True(web.GetProperty("configured").GetBoolean());
        Assert.Contains("password", web.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));
        Assert.Equal("FORBIDDEN", ErrorCode(update));
        Assert.Equal("FORBIDDEN", ErrorCode(rotate));
        Assert.Equal("FORBIDDEN", ErrorCode(delete));
        Assert.False((await ClientCredentialsAsync(ServerFactory.Service, ServerFactory.ServiceSecret)).IsError);
    }

    /// <summary>Self-registration is for operators who choose it: by default no endpoint, and discovery names none.</summary>
    [Fact]
    public async Task Clients_DynamicRegistration_IsOffByDefault()
    {
        var discovery = await Http.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration");
        var register = await Http.PostAsJsonAsync("/connect/register", new { redirect_uris = new[] { "https://app.example.test/cb" } });

        Assert.False(discovery.TryGetProperty("registration_endpoint", out _));
        Assert.Equal(HttpStatusCode.NotFound, register.StatusCode);
    }

    [Fact]
    public async Task Clients_NeedThePermission()
    {
        var user = await LoginAsync(await CreateUserAsync());

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/clients", user);
        var create = await ApiAsync(HttpMethod.Post, "/api/v1/clients", user, new { grant_types = new[] { "client_credentials" } });

        Assert.Equal("FORBIDDEN", ErrorCode(list));
        Assert.Equal("FORBIDDEN", ErrorCode(create));
    }
}
