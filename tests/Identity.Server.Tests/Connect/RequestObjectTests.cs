using System.Net;
using System.Security.Cryptography;
using System.Text;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Clients;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Connect;

/// <summary>
/// JWT-Secured Authorization Requests (RFC 9101): a client with registered keys sends its authorization request as a
/// JWT signed with one of them, in the URL or pushed (RFC 9126). Only the object's parameters count; a bad object is
/// refused with invalid_request_object and nobody is sent anywhere. The client is a real OidcClient that
/// authenticates with private_key_jwt; the request object it would send is signed here with a real JsonWebTokenHandler.
/// </summary>
public sealed class RequestObjectTests(SqliteServer factory) : ServerTests<SqliteServer>(factory)
{
    const string Redirect = "https://jar.example.test/callback";
    static readonly PrivateKeyJwtTests<SqliteServer>.ClientKey Key = PrivateKeyJwtTests<SqliteServer>.NewRsaKey("jar-1");
    static readonly PrivateKeyJwtTests<SqliteServer>.ClientKey Stranger = PrivateKeyJwtTests<SqliteServer>.NewRsaKey("jar-1");

    async Task<string> RegisterAsync(string consent = "implicit", bool requireSigned = false)
    {
        var clientId = $"jar-{Guid.NewGuid():N}";
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, consent_type = consent, grant_types = new[] { "authorization_code" }, redirect_uris = new[] { Redirect },
            scopes = new[] { "openid", "email" }, token_endpoint_auth_method = "private_key_jwt", jwks = new { keys = new[] { Key.Public } },
            require_signed_request_object = requireSigned,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return clientId;
    }

    OidcClient ClientOf(string clientId, bool push = false) => new(new OidcClientOptions
    {
        Authority = Issuer, ClientId = clientId, RedirectUri = Redirect, Scope = "openid email",
        HttpClientFactory = _ => Factory.CreateClient(), DisablePushedAuthorization = !push,
        GetClientAssertionAsync = () => Task.FromResult(new ClientAssertion
        {
            Type = OidcConstants.ClientAssertionTypes.JwtBearer, Value = PrivateKeyJwtTests<SqliteServer>.Assertion(Issuer, clientId, Key),
        }),
    });

    /// <summary>The parameters of <paramref name="url"/>'s query, as the claims of a request object.</summary>
    static Dictionary<string, object> ParametersOf(string url) =>
        QueryHelpers.ParseQuery(new Uri(url).Query).ToDictionary(p => p.Key, p => (object)p.Value.ToString());

    string Sign(string clientId, IDictionary<string, object> parameters, PrivateKeyJwtTests<SqliteServer>.ClientKey? key = null, string? audience = null,
        string? issuer = null, TimeSpan? lifetime = null) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = "oauth-authz-req+jwt",
            Issuer = issuer ?? clientId,
            Audience = audience ?? Issuer,
            Claims = parameters,
            Expires = lifetime is null ? null : DateTime.UtcNow + lifetime.Value,
            SigningCredentials = new SigningCredentials((key ?? Key).Signing, (key ?? Key).Algorithm),
        });

    static string AuthorizeWith(string clientId, string requestObject, params (string Key, string Value)[] extra) =>
        QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?> { ["client_id"] = clientId, ["request"] = requestObject }
            .Concat(extra.Select(e => new KeyValuePair<string, string?>(e.Key, e.Value))));

    /// <summary>
    /// The request signed into an object: the browser carries only client_id and the object, a scope and redirect_uri
    /// added beside it change nothing (the consent page shows the object's scopes), and the object's prompt=login asks
    /// for the login once (the object comes back after it, and would ask again and again without the note of it).
    /// </summary>
    [Fact]
    public async Task RequestObject_SignedByTheClient_IsTheRequest()
    {
        var clientId = await RegisterAsync(consent: "explicit");
        var email = await CreateUserAsync();
        var client = ClientOf(clientId);
        var state = await client.PrepareLoginAsync();
        var parameters = ParametersOf(state.StartUrl);
        parameters.Remove("client_id");
        parameters["prompt"] = "login";
        var url = AuthorizeWith(clientId, Sign(clientId, parameters, lifetime: TimeSpan.FromMinutes(5)),
            ("redirect_uri", "https://attacker.example.test/callback"), ("scope", "openid"));
        var browser = new Browser(Factory);

        var login = await browser.OpenAsync(url);
        var consent = await browser.LoginAsync(login, email, Password);
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);
        var discovery = await Http.GetDiscoveryDocumentAsync();

        Assert.Equal("/Account/Consent", consent.Url.AbsolutePath);
        Assert.Contains("See your email address", consent.Document!.Body!.TextContent);
        Assert.Equal(Redirect, back.LeftTo!.GetLeftPart(UriPartial.Path));
        Assert.False(result.IsError, result.Error);
        // The object asked for email; the scope beside it did not count.
        Assert.Equal(email, result.User.FindFirst("email")?.Value);
        Assert.True(discovery.RequestParameterSupported);
        Assert.Contains("RS256", discovery.RequestObjectSigningAlgorithmsSupported);
        Assert.DoesNotContain("none", discovery.RequestObjectSigningAlgorithmsSupported);
    }

    /// <summary>RFC 9126 §3 with RFC 9101: the object pushed, by a client that authenticates with its own assertion.</summary>
    [Fact]
    public async Task RequestObject_Pushed_SignsIn()
    {
        var clientId = await RegisterAsync();
        var email = await CreateUserAsync();
        var client = ClientOf(clientId);
        var state = await client.PrepareLoginAsync();
        var parameters = ParametersOf(state.StartUrl);
        parameters["client_id"] = clientId;
        parameters["prompt"] = "login";

        var pushed = await Http.PushAuthorizationAsync(new PushedAuthorizationRequest
        {
            Address = "/connect/par", ClientId = clientId, Request = Sign(clientId, parameters, lifetime: TimeSpan.FromMinutes(5)),
            ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer, Value = PrivateKeyJwtTests<SqliteServer>.Assertion(Issuer, clientId, Key),
            },
            ClientCredentialStyle = ClientCredentialStyle.PostBody,
        });
        Assert.False(pushed.IsError, pushed.Raw);
        var browser = new Browser(Factory);
        var back = await browser.LoginAsync(await browser.OpenAsync(QueryHelpers.AddQueryString("/connect/authorize",
            new Dictionary<string, string?> { ["client_id"] = clientId, ["request_uri"] = pushed.RequestUri })), email, Password);
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);

        Assert.False(result.IsError, result.Error);
        Assert.Equal(email, result.User.FindFirst("email")?.Value);
    }

    /// <summary>
    /// A pushed request (no object) with prompt=login and max_age=0, by a real OidcClient that pushes, to an app that
    /// asks for consent: the user logs in once and consents once, though the request_uri that comes back after each
    /// page still says prompt=login (it looped back to the login page before), and a second request logs in again.
    /// </summary>
    [Fact]
    public async Task Pushed_WithPromptLogin_AsksForLoginOnce()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = $"par-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, grant_types = new[] { "authorization_code" }, redirect_uris = new[] { Redirect },
            scopes = new[] { "openid", "email" },
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        var client = new OidcClient(new OidcClientOptions
        {
            Authority = Issuer, ClientId = clientId, RedirectUri = Redirect, Scope = "openid email", HttpClientFactory = _ => Factory.CreateClient(),
        });
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        async Task<(Browser.Page Login, Browser.Page Consent, LoginResult Result)> SignInAsync()
        {
            var state = await client.PrepareLoginAsync(new Parameters { { "prompt", "login" }, { "max_age", "0" } });
            var login = await browser.OpenAsync(state.StartUrl);
            var consent = await browser.LoginAsync(login, email, Password);
            var back = consent.Url.AbsolutePath == "/Account/Consent" ? await browser.SubmitAsync(consent, button: "consent", value: "accept") : consent;
            return (login, consent, await client.ProcessResponseAsync(back.LeftTo!.ToString(), state));
        }

        var first = await SignInAsync();
        var second = await SignInAsync();

        Assert.Equal("/Account/Consent", first.Consent.Url.AbsolutePath);
        Assert.False(first.Result.IsError, first.Result.Error);
        Assert.Equal(email, first.Result.User.FindFirst("email")?.Value);
        // Signed in already, the next prompt=login request shows the login page again all the same.
        Assert.Equal("/Account/Login", second.Login.Url.AbsolutePath);
        Assert.False(second.Result.IsError, second.Result.Error);
    }

    /// <summary>
    /// require_signed_request_object (RFC 9101 §10.5, Keycloak's "request object required"): the client's requests in
    /// the URL or pushed without an object are refused; its signed ones, in the URL or pushed, sign in.
    /// </summary>
    [Fact]
    public async Task RequireSignedRequestObject_RefusesPlainRequests_AndTakesSignedOnes()
    {
        var clientId = await RegisterAsync(requireSigned: true);
        var email = await CreateUserAsync();
        var client = ClientOf(clientId);
        var state = await client.PrepareLoginAsync();
        var browser = new Browser(Factory);

        var inTheUrl = await browser.OpenAsync(state.StartUrl);
        var parameters = ParametersOf(state.StartUrl);
        var pushed = await Http.PushAuthorizationAsync(new PushedAuthorizationRequest
        {
            Address = "/connect/par", ClientId = clientId, ResponseType = "code", Scope = "openid email", RedirectUri = Redirect,
            CodeChallenge = (string)parameters["code_challenge"], CodeChallengeMethod = "S256",
            ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer, Value = PrivateKeyJwtTests<SqliteServer>.Assertion(Issuer, clientId, Key),
            },
            ClientCredentialStyle = ClientCredentialStyle.PostBody,
        });
        var signed = await browser.LoginAsync(await browser.OpenAsync(AuthorizeWith(clientId, Sign(clientId, parameters, lifetime: TimeSpan.FromMinutes(5)))),
            email, Password);
        var result = await client.ProcessResponseAsync(signed.LeftTo!.ToString(), state);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var view = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin);
        var keyless = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = $"jar-{Guid.NewGuid():N}", @public = true, grant_types = new[] { "authorization_code" }, redirect_uris = new[] { Redirect },
            require_signed_request_object = true,
        });

        Assert.Equal(HttpStatusCode.BadRequest, inTheUrl.Status);
        Assert.Null(inTheUrl.LeftTo);
        Assert.Contains("request object", inTheUrl.Body);
        Assert.Equal("invalid_request", pushed.Error);
        Assert.Contains("request object", pushed.TryGet("error_description"));
        Assert.False(result.IsError, result.Error);
        Assert.True(view.Body.GetProperty("client").GetProperty("require_signed_request_object").GetBoolean(), view.Body.ToString());
        Assert.Equal(HttpStatusCode.BadRequest, keyless.Status);
        Assert.Equal("require_signed_request_object", keyless.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
    }

    public static TheoryData<string> BadObjects => new()
    {
        "another key", "another audience", "another issuer", "expired", "no exp", "too long", "unsigned", "HS256", "client_id inside differs",
        "request_uri inside", "array scope", "null state", "not a JWT", "payload not JSON", "encrypted",
    };

    /// <summary>
    /// RFC 9101 §6.2: an object that is not the client's, not for this server, not current or not signed is refused
    /// with invalid_request_object, on the server's page: the redirect_uri in it cannot be trusted.
    /// </summary>
    [Theory]
    [MemberData(nameof(BadObjects))]
    public async Task RequestObject_Bad_IsRefusedOnTheServer(string flaw)
    {
        var clientId = await RegisterAsync();
        var parameters = ParametersOf((await ClientOf(clientId).PrepareLoginAsync()).StartUrl);
        var fiveMinutes = TimeSpan.FromMinutes(5);
        var requestObject = flaw switch
        {
            "another key" => Sign(clientId, parameters, Stranger, lifetime: fiveMinutes),
            "another audience" => Sign(clientId, parameters, audience: "https://other.example.test/", lifetime: fiveMinutes),
            "another issuer" => Sign(clientId, parameters, issuer: "someone-else", lifetime: fiveMinutes),
            "expired" => Sign(clientId, new Dictionary<string, object>(parameters) { ["exp"] = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds() }),
            "no exp" => Sign(clientId, parameters),
            "too long" => Sign(clientId, parameters, lifetime: TimeSpan.FromHours(2)),
            "unsigned" => Unsecured(clientId, parameters),
            "HS256" => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = clientId, Audience = Issuer, Claims = parameters, Expires = DateTime.UtcNow + fiveMinutes,
                SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256),
            }),
            "client_id inside differs" => Sign(clientId, new Dictionary<string, object>(parameters) { ["client_id"] = "someone-else" }, lifetime: fiveMinutes),
            "request_uri inside" => Sign(clientId, new Dictionary<string, object>(parameters) { ["request_uri"] = "urn:x" }, lifetime: fiveMinutes),
            "array scope" => Sign(clientId, new Dictionary<string, object>(parameters) { ["scope"] = new[] { "openid", "email" } }, lifetime: fiveMinutes),
            "null state" => Sign(clientId, new Dictionary<string, object>(parameters) { ["state"] = null! }, lifetime: fiveMinutes),
            "not a JWT" => "not-a-jwt",
            "payload not JSON" => "eyJhbGciOiJSUzI1NiIsImtpZCI6Imphci0xIn0.bm90IGpzb24.c2ln",
            "encrypted" => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = clientId, Audience = Issuer, Claims = parameters, Expires = DateTime.UtcNow + fiveMinutes,
                SigningCredentials = new SigningCredentials(Key.Signing, Key.Algorithm),
                EncryptingCredentials = new EncryptingCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.Aes256KW,
                    SecurityAlgorithms.Aes128CbcHmacSha256),
            }),
            _ => throw new ArgumentOutOfRangeException(nameof(flaw)),
        };

        var page = await new Browser(Factory).OpenAsync(AuthorizeWith(clientId, requestObject));

        Assert.Equal(HttpStatusCode.BadRequest, page.Status);
        Assert.Null(page.LeftTo);
        Assert.Contains("invalid_request_object", page.Body);
    }

    /// <summary>RFC 9101 §5: request and request_uri together, or an object without client_id beside it, are invalid requests.</summary>
    [Fact]
    public async Task RequestObject_WithRequestUriOrWithoutClientId_IsInvalidRequest()
    {
        var clientId = await RegisterAsync();
        var requestObject = Sign(clientId, ParametersOf((await ClientOf(clientId).PrepareLoginAsync()).StartUrl), lifetime: TimeSpan.FromMinutes(5));
        var browser = new Browser(Factory);

        var both = await browser.OpenAsync(AuthorizeWith(clientId, requestObject, ("request_uri", "urn:ietf:params:oauth:request_uri:x")));
        var alone = await browser.OpenAsync("/connect/authorize?request=" + Uri.EscapeDataString(requestObject));

        foreach (var page in new[] { both, alone })
        {
            Assert.Equal(HttpStatusCode.BadRequest, page.Status);
            Assert.Null(page.LeftTo);
            Assert.Contains("invalid_request", page.Body);
            Assert.DoesNotContain("invalid_request_object", page.Body);
        }
    }

    /// <summary>An object with alg none: anyone could have written it.</summary>
    static string Unsecured(string clientId, Dictionary<string, object> parameters)
    {
        static string Part(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
        var claims = new Dictionary<string, object>(parameters) { ["iss"] = clientId, ["aud"] = "http://localhost/", ["exp"] = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds() };
        return Part("""{"alg":"none"}""") + "." + Part(System.Text.Json.JsonSerializer.Serialize(claims)) + ".";
    }
}

/// <summary>
/// A second opinion: panva's certified openid-client (node, tools/openid-client/jar.mjs) makes the request object as
/// it would for any provider (with max_age as a number and claims as JSON inside), authenticates with private_key_jwt,
/// and checks the ID token it gets.
/// </summary>
public sealed class RequestObjectInteropTests(KestrelServer server) : ServerTests<KestrelServer>(server)
{
    const string Redirect = "https://jar.example.test/callback";

    [Fact]
    public async Task OpenIdClient_SignsItsRequest_AndSignsIn()
    {
        using var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(true);
        string B(byte[]? bytes) => Base64UrlEncoder.Encode(bytes);
        var publicJwk = new Dictionary<string, string> { ["kty"] = "RSA", ["kid"] = "node-1", ["use"] = "sig", ["n"] = B(p.Modulus), ["e"] = B(p.Exponent) };
        var privateJwk = new Dictionary<string, string>(publicJwk)
        {
            ["d"] = B(p.D), ["p"] = B(p.P), ["q"] = B(p.Q), ["dp"] = B(p.DP), ["dq"] = B(p.DQ), ["qi"] = B(p.InverseQ),
        };
        var clientId = $"node-{Guid.NewGuid():N}";
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, consent_type = "implicit", grant_types = new[] { "authorization_code" }, redirect_uris = new[] { Redirect },
            scopes = new[] { "openid", "email" }, token_endpoint_auth_method = "private_key_jwt", jwks = new { keys = new[] { publicJwk } },
            require_signed_request_object = true,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        var email = await CreateUserAsync();
        var environment = new Dictionary<string, string>
        {
            ["ISSUER"] = Issuer, ["CLIENT_ID"] = clientId, ["REDIRECT_URI"] = Redirect, ["PRIVATE_JWK"] = System.Text.Json.JsonSerializer.Serialize(privateJwk),
        };

        var start = System.Text.Json.JsonDocument.Parse(NodeTools.Run("openid-client", "jar.mjs", environment: new Dictionary<string, string>(environment) { ["PHASE"] = "start" })).RootElement;
        var url = new Uri(start.GetProperty("url").GetString()!);
        var browser = new Browser(Http.BaseAddress!);
        var back = await browser.LoginAsync(await browser.OpenAsync(url.PathAndQuery), email, Password);
        var claims = System.Text.Json.JsonDocument.Parse(NodeTools.Run("openid-client", "jar.mjs", environment: new Dictionary<string, string>(environment)
        {
            ["PHASE"] = "finish", ["CALLBACK"] = back.LeftTo!.ToString(), ["VERIFIER"] = start.GetProperty("verifier").GetString()!,
            ["STATE"] = start.GetProperty("state").GetString()!,
        })).RootElement;

        Assert.True(start.GetProperty("requestSupported").GetBoolean());
        Assert.Equal(["client_id", "request"], QueryHelpers.ParseQuery(url.Query).Keys.Order());
        Assert.Equal(Redirect, back.LeftTo!.GetLeftPart(UriPartial.Path));
        Assert.Equal(email, claims.GetProperty("email").GetString());
        Assert.Equal(clientId, claims.GetProperty("aud").GetString());
    }
}
