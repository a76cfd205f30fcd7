using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Clients;

public sealed class DynamicRegistrationServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:DynamicRegistration:Enabled", "true"),
    new("Identity:DynamicRegistration:InitialAccessToken", DynamicRegistrationTests.InitialAccessToken),
]);

/// <summary>
/// Dynamic client registration (RFC 7591) as a self-registering app (an MCP client, say) uses it: read discovery,
/// register with an initial access token, then sign a user in through the code flow with a real OidcClient.
/// </summary>
public sealed class DynamicRegistrationTests(DynamicRegistrationServer server) : ServerTests<DynamicRegistrationServer>(server)
{
    public const string InitialAccessToken = "initial-access-token-0123456789abcdef";
    const string Loopback = "http://127.0.0.1:33418/callback";

    async Task<(HttpStatusCode Status, JsonElement Body)> RegisterAsync(object metadata, string? token = InitialAccessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/register") { Content = JsonContent.Create(metadata) };
        if (token is not null)
            request.Headers.Authorization = new("Bearer", token);
        using var response = await Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>A pushed authorization request (PAR) authenticated with an assertion signed by <paramref name="key"/>.</summary>
    async Task<HttpResponseMessage> PushSignedAsync(string clientId, ECDsa key, string kid, string redirect)
    {
        var assertion = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            TokenType = "client-authentication+jwt", Issuer = clientId, Audience = Issuer,
            Claims = new Dictionary<string, object> { ["sub"] = clientId, ["jti"] = Guid.NewGuid().ToString("N") },
            Expires = DateTime.UtcNow.AddMinutes(1),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256),
        });
        return await Http.PostAsync("/connect/par", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = clientId, ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", ["client_assertion"] = assertion,
            ["response_type"] = "code", ["redirect_uri"] = redirect, ["scope"] = "openid", ["code_challenge"] = Pkce.New().Challenge, ["code_challenge_method"] = "S256",
        }));
    }

    [Fact]
    public async Task Register_APublicApp_ThenSignAUserInThroughIt_WithTheConsentPageWarning()
    {
        var discovery = await Http.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration");
        // RFC 8414's address, where OAuth-only clients such as MCP clients look first, answers the same document.
        var oauthMetadata = await Http.GetFromJsonAsync<JsonElement>("/.well-known/oauth-authorization-server");
        var (status, registered) = await RegisterAsync(new
        {
            client_name = "MCP Inspector", redirect_uris = new[] { Loopback }, token_endpoint_auth_method = "none",
            grant_types = new[] { "authorization_code", "refresh_token" }, scope = "openid profile offline_access",
        });
        Assert.True(status == HttpStatusCode.Created, registered.ToString());
        var clientId = registered.GetProperty("client_id").GetString()!;
        var client = new OidcClient(new OidcClientOptions
        {
            Authority = Issuer, ClientId = clientId, RedirectUri = Loopback, Scope = "openid profile offline_access",
            HttpClientFactory = _ => Factory.CreateClient(),
        });
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);

        var state = await client.PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);

        Assert.Equal(new Uri(Http.BaseAddress!, "/connect/register").AbsoluteUri, discovery.GetProperty("registration_endpoint").GetString());
        Assert.Equal(discovery.GetProperty("registration_endpoint").GetString(), oauthMetadata.GetProperty("registration_endpoint").GetString());
        Assert.Equal(discovery.GetProperty("issuer").GetString(), oauthMetadata.GetProperty("issuer").GetString());
        Assert.Contains("S256", oauthMetadata.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(m => m.GetString()));
        Assert.StartsWith("dyn-", clientId);
        Assert.False(registered.TryGetProperty("client_secret", out _));
        Assert.Equal("none", registered.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal(["authorization_code", "refresh_token"], registered.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));
        Assert.Contains("MCP Inspector", consent.Document!.Body!.TextContent);
        Assert.Contains("registered itself", consent.Document.Body.TextContent);
        Assert.False(result.IsError, result.Error);
        Assert.False(string.IsNullOrEmpty(result.User.FindFirst("sub")?.Value));
        Assert.NotNull(result.RefreshToken);
    }

    [Fact]
    public async Task Register_AConfidentialApp_GetsASecretOnce()
    {
        var (status, registered) = await RegisterAsync(new { client_name = "Web app", redirect_uris = new[] { "https://app.example.test/cb" } });

        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(43, registered.GetProperty("client_secret").GetString()!.Length);
        Assert.Equal(0, registered.GetProperty("client_secret_expires_at").GetInt64());
        Assert.Equal("client_secret_basic", registered.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal("openid profile email offline_access", registered.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task Register_DPoPBoundAccessTokens_IsKeptAndShown_AndMustBeABoolean()
    {
        var (status, registered) = await RegisterAsync(new { redirect_uris = new[] { "https://app.example.test/cb" }, dpop_bound_access_tokens = true });
        var (plainStatus, plain) = await RegisterAsync(new { redirect_uris = new[] { "https://app.example.test/cb" } });
        var (badStatus, bad) = await RegisterAsync(new { redirect_uris = new[] { "https://app.example.test/cb" }, dpop_bound_access_tokens = "yes" });

        Assert.Equal(HttpStatusCode.Created, status);
        Assert.True(registered.GetProperty("dpop_bound_access_tokens").GetBoolean());
        var (_, read) = await ManageAsync(HttpMethod.Get, registered.GetProperty("registration_client_uri").GetString()!,
            registered.GetProperty("registration_access_token").GetString());
        Assert.True(read.GetProperty("dpop_bound_access_tokens").GetBoolean());
        Assert.Equal(HttpStatusCode.Created, plainStatus);
        Assert.False(plain.TryGetProperty("dpop_bound_access_tokens", out _));
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
        Assert.Equal("invalid_client_metadata", bad.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Register_AnAppWithItsOwnKeys_GetsNoSecret_AndPushesRequestsWithSignedAssertions()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var point = key.ExportParameters(false).Q;
        var jwks = new { keys = new[] { new { kty = "EC", crv = "P-256", kid = "app-1", x = Base64UrlEncoder.Encode(point.X), y = Base64UrlEncoder.Encode(point.Y) } } };
        var (status, registered) = await RegisterAsync(new
        {
            client_name = "Keyed app", redirect_uris = new[] { "https://app.example.test/cb" }, token_endpoint_auth_method = "private_key_jwt", jwks,
        });
        var clientId = registered.GetProperty("client_id").GetString()!;

        using var pushed = await PushSignedAsync(clientId, key, "app-1", "https://app.example.test/cb");
        var answer = await pushed.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.Created, status);
        Assert.False(registered.TryGetProperty("client_secret", out _));
        Assert.Equal("private_key_jwt", registered.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal("app-1", registered.GetProperty("jwks").GetProperty("keys")[0].GetProperty("kid").GetString());
        Assert.True(pushed.StatusCode == HttpStatusCode.Created, answer.ToString());
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", answer.GetProperty("request_uri").GetString());
    }

    /// <summary>
    /// RFC 9101 §10.5: an app with keys that registers require_signed_request_object is shown it, and a pushed request
    /// of its without a request object is refused.
    /// </summary>
    [Fact]
    public async Task Register_RequireSignedRequestObject_IsKeptAndShown_AndRefusesPlainRequests()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var point = key.ExportParameters(false).Q;
        var jwks = new { keys = new[] { new { kty = "EC", crv = "P-256", kid = "app-1", x = Base64UrlEncoder.Encode(point.X), y = Base64UrlEncoder.Encode(point.Y) } } };
        var (status, registered) = await RegisterAsync(new
        {
            redirect_uris = new[] { "https://app.example.test/cb" }, token_endpoint_auth_method = "private_key_jwt", jwks, require_signed_request_object = true,
        });
        var clientId = registered.GetProperty("client_id").GetString()!;

        using var pushed = await PushSignedAsync(clientId, key, "app-1", "https://app.example.test/cb");
        var answer = await pushed.Content.ReadFromJsonAsync<JsonElement>();
        var (_, read) = await ManageAsync(HttpMethod.Get, registered.GetProperty("registration_client_uri").GetString()!,
            registered.GetProperty("registration_access_token").GetString());

        Assert.Equal(HttpStatusCode.Created, status);
        Assert.True(registered.GetProperty("require_signed_request_object").GetBoolean());
        Assert.True(read.GetProperty("require_signed_request_object").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, pushed.StatusCode);
        Assert.Equal("invalid_request", answer.GetProperty("error").GetString());
        Assert.Contains("request object", answer.GetProperty("error_description").GetString());
    }

    /// <summary>
    /// An app registers where it hears of its users' sign-outs (Back-Channel and Front-Channel Logout 1.0 §2.2 and §2),
    /// as with the clients API: the registration shows them, and its management reads them back.
    /// </summary>
    [Fact]
    public async Task Register_LogoutUris_AreKeptAndShown()
    {
        var (status, registered) = await RegisterAsync(new
        {
            redirect_uris = new[] { "https://app.example.test/cb" }, backchannel_logout_uri = "https://app.example.test/backchannel",
            frontchannel_logout_uri = "https://app.example.test/frontchannel", frontchannel_logout_session_required = false,
        });

        Assert.Equal(HttpStatusCode.Created, status);
        var (_, read) = await ManageAsync(HttpMethod.Get, registered.GetProperty("registration_client_uri").GetString()!,
            registered.GetProperty("registration_access_token").GetString());
        foreach (var view in new[] { registered, read })
        {
            Assert.Equal("https://app.example.test/backchannel", view.GetProperty("backchannel_logout_uri").GetString());
            Assert.True(view.GetProperty("backchannel_logout_session_required").GetBoolean());
            Assert.Equal("https://app.example.test/frontchannel", view.GetProperty("frontchannel_logout_uri").GetString());
            Assert.False(view.GetProperty("frontchannel_logout_session_required").GetBoolean());
        }
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var client = (await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{registered.GetProperty("client_id").GetString()}", admin)).Body.GetProperty("client");
        Assert.Equal("https://app.example.test/frontchannel", client.GetProperty("frontchannel_logout_uri").GetString());
    }

    [Theory]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"frontchannel_logout_uri":"https://elsewhere.example.test/logout"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"frontchannel_logout_uri":7}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"frontchannel_logout_session_required":"no"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"backchannel_logout_uri":"http://evil.example.test/logout"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["http://evil.example.test/cb"]}""", "invalid_redirect_uri")]
    [InlineData("""{"redirect_uris":[]}""", "invalid_redirect_uri")]
    [InlineData("""{"redirect_uris":"https://app.example.test/cb"}""", "invalid_redirect_uri")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"grant_types":["client_credentials"]}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"grant_types":["password"]}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"response_types":["token"]}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"scope":"openid identity"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"token_endpoint_auth_method":"private_key_jwt"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example.test/jwks"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":"keys"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"RSA","n":"%%%","e":"AQAB"}]}}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"client_name":"bad\u0000name"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"require_signed_request_object":"yes"}""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":["https://app.example.test/cb"],"token_endpoint_auth_method":"none","require_signed_request_object":true}""", "invalid_client_metadata")]
    [InlineData("""[]""", "invalid_client_metadata")]
    [InlineData("""{"redirect_uris":""", "invalid_client_metadata")]
    public async Task Register_BadMetadata_Is400WithRfc7591Error_AndRegistersNothing(string json, string error)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var before = (await ApiAsync(HttpMethod.Get, "/api/v1/clients", admin)).Body.GetProperty("clients").GetArrayLength();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/register") { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new("Bearer", InitialAccessToken);

        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var after = (await ApiAsync(HttpMethod.Get, "/api/v1/clients", admin)).Body.GetProperty("clients").GetArrayLength();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(error, body.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("error_description").GetString()));
        Assert.Equal(before, after);
    }

    async Task<(HttpStatusCode Status, JsonElement Body)> ManageAsync(HttpMethod method, string uri, string? token, object? metadata = null)
    {
        using var request = new HttpRequestMessage(method, uri) { Content = metadata is null ? null : JsonContent.Create(metadata) };
        if (token is not null)
            request.Headers.Authorization = new("Bearer", token);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement);
    }

    static string TokenOf(JsonElement information) => information.GetProperty("registration_access_token").GetString()!;

    [Fact]
    public async Task Manage_TheAppReadsReplacesAndDeletesItsRegistration_WithATokenThatChangesEachTime()
    {
        var (_, registered) = await RegisterAsync(new
        {
            client_name = "Desktop app", redirect_uris = new[] { Loopback }, token_endpoint_auth_method = "none", scope = "openid profile",
        });
        var clientId = registered.GetProperty("client_id").GetString()!;
        var uri = registered.GetProperty("registration_client_uri").GetString()!;
        Assert.Equal(new Uri(Http.BaseAddress!, "/connect/register/" + clientId).AbsoluteUri, uri);

        var (readStatus, read) = await ManageAsync(HttpMethod.Get, uri, TokenOf(registered));
        Assert.Equal(HttpStatusCode.OK, readStatus);
        Assert.Equal(clientId, read.GetProperty("client_id").GetString());
        Assert.Equal("Desktop app", read.GetProperty("client_name").GetString());
        Assert.Equal([Loopback], read.GetProperty("redirect_uris").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal("none", read.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal("openid profile", read.GetProperty("scope").GetString());
        // The token it used is spent: each answer carries the next.
        Assert.NotEqual(TokenOf(registered), TokenOf(read));
        Assert.Equal(HttpStatusCode.Unauthorized, (await ManageAsync(HttpMethod.Get, uri, TokenOf(registered))).Status);

        const string moved = "http://127.0.0.1:40123/callback";
        var (replaceStatus, replaced) = await ManageAsync(HttpMethod.Put, uri, TokenOf(read), new
        {
            client_id = clientId, client_name = "Desktop app 2", redirect_uris = new[] { moved }, token_endpoint_auth_method = "none",
            scope = "openid email",
        });
        Assert.True(replaceStatus == HttpStatusCode.OK, replaced.ToString());
        Assert.Equal([moved], replaced.GetProperty("redirect_uris").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal("openid email", replaced.GetProperty("scope").GetString());
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        using var byAdmin = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/clients/{clientId}");
        byAdmin.Headers.Authorization = new("Bearer", admin);
        var asAdmin = await (await Http.SendAsync(byAdmin)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal([moved], asAdmin.GetProperty("client").GetProperty("redirect_uris").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal(["email"], asAdmin.GetProperty("client").GetProperty("scopes").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal("Desktop app 2", asAdmin.GetProperty("client").GetProperty("display_name").GetString());

        var (deleteStatus, _) = await ManageAsync(HttpMethod.Delete, uri, TokenOf(replaced));
        Assert.Equal(HttpStatusCode.NoContent, deleteStatus);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ManageAsync(HttpMethod.Get, uri, TokenOf(replaced))).Status);
        using var gone = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/clients/{clientId}");
        gone.Headers.Authorization = new("Bearer", admin);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(gone)).StatusCode);
    }

    [Fact]
    public async Task Manage_WithAnotherAppsToken_NoToken_OrAnUnknownClient_Is401_AndChangesNothing()
    {
        var (_, mine) = await RegisterAsync(new { redirect_uris = new[] { "https://mine.example.test/cb" } });
        var (_, theirs) = await RegisterAsync(new { redirect_uris = new[] { "https://theirs.example.test/cb" } });
        var uri = mine.GetProperty("registration_client_uri").GetString()!;

        var stolen = await ManageAsync(HttpMethod.Delete, uri, TokenOf(theirs));
        var none = await ManageAsync(HttpMethod.Get, uri, null);
        var unknown = await ManageAsync(HttpMethod.Get, "/connect/register/dyn-00000000000000000000000000000000", TokenOf(mine));

        Assert.Equal(HttpStatusCode.Unauthorized, stolen.Status);
        Assert.Equal("invalid_token", stolen.Body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.Status);
        // Still there, and its own token, unspent by those attempts, still reads it.
        Assert.Equal(HttpStatusCode.OK, (await ManageAsync(HttpMethod.Get, uri, TokenOf(mine))).Status);
    }

    [Fact]
    public async Task Manage_AReplacementThatBreaksTheRules_Is400_AndKeepsTheRegistration()
    {
        var (_, registered) = await RegisterAsync(new { client_name = "Web app", redirect_uris = new[] { "https://app.example.test/cb" } });
        var clientId = registered.GetProperty("client_id").GetString()!;
        var uri = registered.GetProperty("registration_client_uri").GetString()!;
        var token = TokenOf(registered);

        var otherId = await ManageAsync(HttpMethod.Put, uri, token, new { client_id = "dyn-other", redirect_uris = new[] { "https://app.example.test/cb" } });
        var toPublic = await ManageAsync(HttpMethod.Put, uri, token, new
        {
            client_id = clientId, redirect_uris = new[] { "https://app.example.test/cb" }, token_endpoint_auth_method = "none",
        });
        var chosenSecret = await ManageAsync(HttpMethod.Put, uri, token, new
        {
            client_id = clientId, redirect_uris = new[] { "https://app.example.test/cb" }, client_secret = "my-own-secret-0123456789abcdef0123456789",
        });
        var insecure = await ManageAsync(HttpMethod.Put, uri, token, new { client_id = clientId, redirect_uris = new[] { "http://app.example.test/cb" } });

        Assert.Equal((HttpStatusCode.BadRequest, "invalid_client_metadata"), (otherId.Status, otherId.Body.GetProperty("error").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_client_metadata"), (toPublic.Status, toPublic.Body.GetProperty("error").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_client_metadata"), (chosenSecret.Status, chosenSecret.Body.GetProperty("error").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_redirect_uri"), (insecure.Status, insecure.Body.GetProperty("error").GetString()));
        // Refused replacements spend nothing: the token still works, the registration is as it was, and its secret too.
        var (status, read) = await ManageAsync(HttpMethod.Get, uri, token);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Web app", read.GetProperty("client_name").GetString());
        Assert.Equal("client_secret_basic", read.GetProperty("token_endpoint_auth_method").GetString());
        Assert.False(read.TryGetProperty("client_secret", out _));

        var (keptStatus, kept) = await ManageAsync(HttpMethod.Put, uri, TokenOf(read), new
        {
            client_id = clientId, client_name = "Web app, renamed", redirect_uris = new[] { "https://app.example.test/cb" },
            client_secret = registered.GetProperty("client_secret").GetString(),
        });
        Assert.True(keptStatus == HttpStatusCode.OK, kept.ToString());
        var tokens = await Duende.IdentityModel.Client.HttpClientTokenRequestExtensions.RequestClientCredentialsTokenAsync(Http, new Duende.IdentityModel.Client.ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = registered.GetProperty("client_secret").GetString(),
        });
        // The app has no client_credentials grant: the answer is about the grant, so the secret was accepted.
        Assert.Equal("unauthorized_client", tokens.Error);
    }

    [Fact]
    public async Task Manage_StillWorks_AfterAnAdministratorChangesTheClient_AndKeepsWhatTheAppRegistered()
    {
        var (_, registered) = await RegisterAsync(new
        {
            client_name = "Form-posting app", redirect_uris = new[] { "https://post.example.test/cb" }, token_endpoint_auth_method = "client_secret_post",
        });
        var clientId = registered.GetProperty("client_id").GetString()!;
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        using var rename = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/clients/{clientId}") { Content = JsonContent.Create(new { display_name = "Vetted app" }) };
        rename.Headers.Authorization = new("Bearer", admin);
        Assert.Equal(HttpStatusCode.OK, (await Http.SendAsync(rename)).StatusCode);

        var (status, read) = await ManageAsync(HttpMethod.Get, registered.GetProperty("registration_client_uri").GetString()!, TokenOf(registered));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Vetted app", read.GetProperty("client_name").GetString());
        Assert.Equal("client_secret_post", read.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal(registered.GetProperty("client_id_issued_at").GetInt64(), read.GetProperty("client_id_issued_at").GetInt64());
        using var scope = Factory.Services.CreateScope();
        var applications = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictApplicationManager>();
        var application = await applications.FindByClientIdAsync(clientId);
        // Its consent page still says it registered itself.
        Assert.True((await applications.GetPropertiesAsync(application!)).ContainsKey("dynamically_registered"));
    }

    [Fact]
    public async Task Manage_ConcurrentUsesOfOneToken_AreNeverAServerError_AndOneOfThemWins()
    {
        var (_, registered) = await RegisterAsync(new { redirect_uris = new[] { "https://race.example.test/cb" } });
        var uri = registered.GetProperty("registration_client_uri").GetString()!;

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => ManageAsync(HttpMethod.Get, uri, TokenOf(registered))));

        Assert.All(answers, a => Assert.Contains(a.Status, new[] { HttpStatusCode.OK, HttpStatusCode.Unauthorized, HttpStatusCode.Conflict }));
        Assert.Contains(answers, a => a.Status == HttpStatusCode.OK);
        Assert.All(answers.Where(a => a.Status != HttpStatusCode.OK), a => Assert.True(a.Body.TryGetProperty("error", out _)));
    }

    [Fact]
    public async Task Manage_AnAppWithItsOwnKeys_ReplacesThem_AndOnlyTheNewKeySignsItIn()
    {
        using var oldKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var newKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        object Jwks(ECDsa key, string kid)
        {
            var point = key.ExportParameters(false).Q;
            return new { keys = new[] { new { kty = "EC", crv = "P-256", kid, x = Base64UrlEncoder.Encode(point.X), y = Base64UrlEncoder.Encode(point.Y) } } };
        }
        const string redirect = "https://rotating.example.test/cb";
        var (_, registered) = await RegisterAsync(new
        {
            redirect_uris = new[] { redirect }, token_endpoint_auth_method = "private_key_jwt", jwks = Jwks(oldKey, "old"),
        });
        var clientId = registered.GetProperty("client_id").GetString()!;
        async Task<HttpStatusCode> PushSignedWithAsync(ECDsa key, string kid)
        {
            using var pushed = await PushSignedAsync(clientId, key, kid, redirect);
            return pushed.StatusCode;
        }
        Assert.Equal(HttpStatusCode.Created, await PushSignedWithAsync(oldKey, "old"));

        var (status, replaced) = await ManageAsync(HttpMethod.Put, registered.GetProperty("registration_client_uri").GetString()!, TokenOf(registered), new
        {
            client_id = clientId, redirect_uris = new[] { redirect }, token_endpoint_auth_method = "private_key_jwt", jwks = Jwks(newKey, "new"),
        });

        Assert.True(status == HttpStatusCode.OK, replaced.ToString());
        Assert.Equal("new", replaced.GetProperty("jwks").GetProperty("keys")[0].GetProperty("kid").GetString());
        Assert.Equal(HttpStatusCode.Created, await PushSignedWithAsync(newKey, "new"));
        Assert.Equal(HttpStatusCode.Unauthorized, await PushSignedWithAsync(oldKey, "old"));
    }

    /// <summary>An app that publishes its keys at a jwks_uri registers that address, not its keys, and signs in with them.</summary>
    [Fact]
    public async Task Register_AnAppWithItsKeysAtAJwksUri_SignsInWithThem_AndIsShownTheAddress()
    {
        await using var site = new KeySetServer();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var point = key.ExportParameters(false).Q;
        var jwksUri = site.Publish(JsonSerializer.Serialize(new
        {
            keys = new[] { new { kty = "EC", crv = "P-256", kid = "site-1", x = Base64UrlEncoder.Encode(point.X), y = Base64UrlEncoder.Encode(point.Y) } },
        }));
        const string redirect = "https://site-keys.example.test/cb";

        var (status, registered) = await RegisterAsync(new { redirect_uris = new[] { redirect }, token_endpoint_auth_method = "private_key_jwt", jwks_uri = jwksUri });
        Assert.True(status == HttpStatusCode.Created, registered.ToString());
        var clientId = registered.GetProperty("client_id").GetString()!;
        using var pushed = await PushSignedAsync(clientId, key, "site-1", redirect);
        var (readStatus, read) = await ManageAsync(HttpMethod.Get, registered.GetProperty("registration_client_uri").GetString()!, TokenOf(registered));

        Assert.Equal(jwksUri, registered.GetProperty("jwks_uri").GetString());
        Assert.False(registered.TryGetProperty("jwks", out _));
        Assert.False(registered.TryGetProperty("client_secret", out _));
        Assert.Equal(HttpStatusCode.Created, pushed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, readStatus);
        Assert.Equal(jwksUri, read.GetProperty("jwks_uri").GetString());
        Assert.Equal(1, site.RequestsTo(jwksUri));
    }

    [Fact]
    public async Task Register_WithoutTheInitialAccessToken_Is401()
    {
        var metadata = new { redirect_uris = new[] { "https://app.example.test/cb" } };

        var none = await RegisterAsync(metadata, token: null);
        var wrong = await RegisterAsync(metadata, token: "initial-access-token-0123456789abcdeX");

        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Equal("invalid_token", none.Body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
    }
}
