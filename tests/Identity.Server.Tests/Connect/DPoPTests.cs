using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Connect;

public sealed class SqliteDPoPTests(SqliteServer server) : DPoPTests<SqliteServer>(server);
public sealed class PostgreSqlDPoPTests(PostgreSqlServer server) : DPoPTests<PostgreSqlServer>(server);

/// <summary>
/// A key a DPoP client holds, and its proofs (RFC 9449 §4.2), written here by hand from the RFC rather than with the
/// server's JWT library: header typ, alg and the public jwk; payload jti, htm, htu, iat and, with a token, ath.
/// </summary>
public sealed class DPoPKey(int rsaBits = 0)
{
    readonly ECDsa? ec = rsaBits == 0 ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : null;
    readonly RSA? rsa = rsaBits == 0 ? null : RSA.Create(rsaBits);

    public Dictionary<string, string> PublicJwk
    {
        get
        {
            if (rsa is not null)
            {
                var r = rsa.ExportParameters(false);
                return new() { ["kty"] = "RSA", ["n"] = Base64UrlEncoder.Encode(r.Modulus), ["e"] = Base64UrlEncoder.Encode(r.Exponent) };
            }
            var p = ec!.ExportParameters(false);
            return new() { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64UrlEncoder.Encode(p.Q.X), ["y"] = Base64UrlEncoder.Encode(p.Q.Y) };
        }
    }

    /// <summary>RFC 7638: SHA-256 over the required members in lexical order, without white space.</summary>
    public string Thumbprint
    {
        get
        {
            var jwk = PublicJwk;
            var canonical = rsa is not null
                ? $$"""{"e":"{{jwk["e"]}}","kty":"RSA","n":"{{jwk["n"]}}"}"""
                : $$"""{"crv":"{{jwk["crv"]}}","kty":"EC","x":"{{jwk["x"]}}","y":"{{jwk["y"]}}"}""";
            return Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
        }
    }

    public string Proof(string method, string url, string? accessToken = null, DateTimeOffset? issuedAt = null, string? jti = null,
        string type = "dpop+jwt", object? jwk = null, string? nonce = null)
    {
        var header = new Dictionary<string, object> { ["typ"] = type, ["alg"] = rsa is null ? "ES256" : "RS256", ["jwk"] = jwk ?? PublicJwk };
        var payload = new Dictionary<string, object>
        {
            ["jti"] = jti ?? Guid.NewGuid().ToString("N"), ["htm"] = method, ["htu"] = url,
            ["iat"] = (issuedAt ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        if (nonce is not null)
            payload["nonce"] = nonce;
        if (accessToken is not null)
            payload["ath"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        var input = Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(payload));
        var signature = rsa?.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            ?? ec!.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return input + "." + Base64UrlEncoder.Encode(signature);
    }
}

/// <summary>DPoP (RFC 9449) as a client uses it: tokens bound to its key, and this server's APIs taking them only with a proof.</summary>
public abstract class DPoPTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    string TokenUrl => new Uri(Http.BaseAddress!, "connect/token").ToString();

    string MeUrl => new Uri(Http.BaseAddress!, "api/v1/auth/me").ToString();

    Task<TokenResponse> ServiceTokenAsync(params string[] proofs) => ServiceTokenForAsync(ServerFactory.DownstreamScope, proofs);

    Task<TokenResponse> ServiceTokenForAsync(string scope, params string[] proofs)
    {
        var request = new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = scope,
        };
        foreach (var proof in proofs)
            request.Headers.Add("DPoP", proof);
        return Http.RequestClientCredentialsTokenAsync(request);
    }

    async Task<TokenResponse> UserTokenAsync(DPoPKey key, string email)
    {
        var request = new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = email, Password = Password, Scope = "openid email offline_access identity",
        };
        request.Headers.Add("DPoP", key.Proof("POST", TokenUrl));
        var response = await Http.RequestPasswordTokenAsync(request);
        Assert.False(response.IsError, response.Error + ": " + response.ErrorDescription);
        return response;
    }

    /// <summary>A refresh as the client would make it, with the given DPoP proofs; the web app with its secret, the SPA without one.</summary>
    Task<TokenResponse> RefreshWithAsync(string refreshToken, bool confidential, params string[] proofs)
    {
        var request = new RefreshTokenRequest
        {
            Address = "/connect/token", ClientId = confidential ? ServerFactory.Web : ServerFactory.Spa,
            ClientSecret = confidential ? ServerFactory.WebSecret : null, RefreshToken = refreshToken,
        };
        foreach (var proof in proofs)
            request.Headers.Add("DPoP", proof);
        return Http.RequestRefreshTokenAsync(request);
    }

    async Task<HttpStatusCode> MeAsync(string scheme, string token, params string[] proofs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/auth/me");
        request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token);
        foreach (var proof in proofs)
            request.Headers.Add("DPoP", proof);
        return (await Http.SendAsync(request)).StatusCode;
    }

    static string Cnf(string accessToken) =>
        JsonDocument.Parse(Base64UrlEncoder.Decode(accessToken.Split('.')[1])).RootElement.GetProperty("cnf").GetProperty("jkt").GetString()!;

    [Fact]
    public async Task Discovery_NamesTheProofAlgorithms()
    {
        var discovery = await Http.GetDiscoveryDocumentAsync();
        Assert.False(discovery.IsError, discovery.Error);
        var algorithms = discovery.Json!.Value.GetProperty("dpop_signing_alg_values_supported").EnumerateArray().Select(a => a.GetString()).ToList();
        Assert.Contains("ES256", algorithms);
        Assert.Contains("PS256", algorithms);
        Assert.DoesNotContain(algorithms, a => a!.StartsWith("HS", StringComparison.Ordinal) || a == "none");
    }

    [Fact]
    public async Task ClientCredentials_WithAProof_GivesADPoPTokenBoundToTheKey_WithoutOne_ABearerToken()
    {
        var key = new DPoPKey();

        var bound = await ServiceTokenAsync(key.Proof("POST", TokenUrl));
        var bearer = await ServiceTokenAsync();

        Assert.False(bound.IsError, bound.Error + ": " + bound.ErrorDescription);
        Assert.Equal("DPoP", bound.TokenType);
        Assert.Equal(key.Thumbprint, Cnf(bound.AccessToken!));
        var verified = await ValidateJwtAsync(bound.AccessToken!, ServerFactory.DownstreamAudience);
        Assert.Equal(ServerFactory.Service, verified.Subject);
        Assert.Equal("Bearer", bearer.TokenType);
        Assert.DoesNotContain("\"cnf\"", Base64UrlEncoder.Decode(bearer.AccessToken!.Split('.')[1]));
    }

    public static TheoryData<string> BadProofs => ["wrong method", "other url", "stale", "future", "typ jwt", "private key in jwk", "another key's jwk",
        "not a jwt", "symmetric jwk"];

    [Theory]
    [MemberData(nameof(BadProofs))]
    public async Task TokenRequest_WithABadProof_IsInvalidDPoPProof_AndIssuesNothing(string flaw)
    {
        var key = new DPoPKey();
        var now = DateTimeOffset.UtcNow;
        var proof = flaw switch
        {
            "wrong method" => key.Proof("GET", TokenUrl),
            "other url" => key.Proof("POST", new Uri(Http.BaseAddress!, "connect/introspect").ToString()),
            "stale" => key.Proof("POST", TokenUrl, issuedAt: now.AddMinutes(-10)),
            "future" => key.Proof("POST", TokenUrl, issuedAt: now.AddMinutes(10)),
            "typ jwt" => key.Proof("POST", TokenUrl, type: "JWT"),
            "private key in jwk" => key.Proof("POST", TokenUrl, jwk: new Dictionary<string, string>(key.PublicJwk) { ["d"] = Base64UrlEncoder.Encode(new byte[32]) }),
            "another key's jwk" => key.Proof("POST", TokenUrl, jwk: new DPoPKey().PublicJwk),
            "symmetric jwk" => key.Proof("POST", TokenUrl, jwk: new Dictionary<string, string> { ["kty"] = "oct", ["k"] = "c2VjcmV0" }),
            _ => "not.a.jwt",
        };

        var response = await ServiceTokenAsync(proof);

        Assert.Equal(HttpStatusCode.BadRequest, response.HttpStatusCode);
        Assert.Equal("invalid_dpop_proof", response.Error);
        Assert.Null(response.AccessToken);
    }

    /// <summary>require_dpop (RFC 9449 §5.2's dpop_bound_access_tokens): such a client never gets a bearer token.</summary>
    [Fact]
    public async Task ClientRequiringDPoP_GetsNothingWithoutAProof_UntilTheRequirementIsLifted()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = "dpop-only-" + Guid.NewGuid().ToString("N")[..8];
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope }, require_dpop = true,
        });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.True(created.Body.GetProperty("client").GetProperty("require_dpop").GetBoolean());
        var secret = created.Body.GetProperty("client_secret").GetString()!;
        Task<TokenResponse> TokenAsync(params string[] proofs)
        {
            var request = new ClientCredentialsTokenRequest { Address = "/connect/token", ClientId = clientId, ClientSecret = secret };
            foreach (var proof in proofs)
                request.Headers.Add("DPoP", proof);
            return Http.RequestClientCredentialsTokenAsync(request);
        }
        var key = new DPoPKey();

        var withoutProof = await TokenAsync();
        var withProof = await TokenAsync(key.Proof("POST", TokenUrl));
        var lifted = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { require_dpop = false });
        var afterwards = await TokenAsync();

        Assert.Equal("invalid_dpop_proof", withoutProof.Error);
        Assert.Null(withoutProof.AccessToken);
        Assert.Equal("DPoP", withProof.TokenType);
        Assert.Equal(HttpStatusCode.OK, lifted.Status);
        Assert.False(lifted.Body.GetProperty("client").GetProperty("require_dpop").GetBoolean());
        Assert.False(afterwards.IsError, afterwards.Error + ": " + afterwards.ErrorDescription);
        Assert.Equal("Bearer", afterwards.TokenType);
    }

    [Fact]
    public async Task RsaProofs_Of2048Bits_AreTaken_ShorterKeysAreNot()
    {
        var strong = new DPoPKey(rsaBits: 2048);
        var weak = new DPoPKey(rsaBits: 1024);

        var bound = await ServiceTokenAsync(strong.Proof("POST", TokenUrl));
        var refused = await ServiceTokenAsync(weak.Proof("POST", TokenUrl));

        Assert.False(bound.IsError, bound.Error + ": " + bound.ErrorDescription);
        Assert.Equal(strong.Thumbprint, Cnf(bound.AccessToken!));
        Assert.Equal("invalid_dpop_proof", refused.Error);
    }

    [Fact]
    public async Task TokenRequest_AProofUsedTwice_OrTwoProofs_AreRefused()
    {
        var key = new DPoPKey();
        var proof = key.Proof("POST", TokenUrl);

        var first = await ServiceTokenAsync(proof);
        var replayed = await ServiceTokenAsync(proof);
        var two = await ServiceTokenAsync(key.Proof("POST", TokenUrl), key.Proof("POST", TokenUrl));

        Assert.False(first.IsError, first.Error + ": " + first.ErrorDescription);
        Assert.Equal("invalid_dpop_proof", replayed.Error);
        Assert.Equal("invalid_dpop_proof", two.Error);
    }

    [Fact]
    public async Task BoundToken_OnThisServersApi_OnlyWithTheDPoPSchemeAndAFreshProofOfTheSameKey()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var token = (await UserTokenAsync(key, email)).AccessToken!;
        var reused = key.Proof("GET", MeUrl, token);

        Assert.Equal(HttpStatusCode.OK, await MeAsync("DPoP", token, reused));
        // A stolen copy: as a bearer token, without a proof, with the proof seen before, with its own key's proof.
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("Bearer", token));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("Bearer", token, key.Proof("GET", MeUrl, token)));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", token));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", token, reused));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", token, new DPoPKey().Proof("GET", MeUrl, token)));
        // Proofs for something else: another token (ath), another method, another URL.
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", token, key.Proof("GET", MeUrl, token + "x")));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", token, key.Proof("POST", MeUrl, token)));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", token, key.Proof("GET", TokenUrl, token)));
        Assert.Equal(HttpStatusCode.OK, await MeAsync("dpop", token, key.Proof("GET", MeUrl, token)));
    }

    /// <summary>A machine token's validation is remembered (VerifiedAccessTokens); its proof is still asked for every time.</summary>
    [Fact]
    public async Task BoundMachineToken_NeedsAProofOnEveryCall_EvenOnceItsValidationIsRemembered()
    {
        var key = new DPoPKey();
        var token = (await ServiceTokenForAsync("identity", key.Proof("POST", TokenUrl))).AccessToken!;
        var url = new Uri(Http.BaseAddress!, "v1/authorize").ToString();

        async Task<HttpStatusCode> DecideAsync(string scheme, string? proof)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/authorize") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token);
            if (proof is not null)
                request.Headers.Add("DPoP", proof);
            return (await Http.SendAsync(request)).StatusCode;
        }

        // An empty question is a 400 from the endpoint itself: the caller got past authentication.
        Assert.Equal(HttpStatusCode.BadRequest, await DecideAsync("DPoP", key.Proof("POST", url, token)));
        Assert.Equal(HttpStatusCode.BadRequest, await DecideAsync("DPoP", key.Proof("POST", url, token)));
        Assert.Equal(HttpStatusCode.Unauthorized, await DecideAsync("Bearer", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await DecideAsync("DPoP", null));
    }

    [Fact]
    public async Task UserInfo_TakesABoundToken_WithItsProof_NotAsABearerToken()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var token = (await UserTokenAsync(key, email)).AccessToken!;
        var url = new Uri(Http.BaseAddress!, "connect/userinfo").ToString();

        async Task<HttpResponseMessage> UserInfoAsync(string scheme, string? proof)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
            request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token);
            if (proof is not null)
                request.Headers.Add("DPoP", proof);
            return await Http.SendAsync(request);
        }
        var withProof = await UserInfoAsync("DPoP", key.Proof("GET", url, token));

        Assert.Equal(HttpStatusCode.OK, withProof.StatusCode);
        Assert.Contains(email, await withProof.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, (await UserInfoAsync("Bearer", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await UserInfoAsync("DPoP", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await UserInfoAsync("DPoP", new DPoPKey().Proof("GET", url, token))).StatusCode);
    }

    /// <summary>
    /// RFC 9449 §7.1: an API or userinfo answers a request made with the DPoP scheme in that scheme, with the algorithms a
    /// proof may use, and a proof's fault is a 401 invalid_dpop_proof; a bearer request is still answered as Bearer.
    /// </summary>
    [Fact]
    public async Task ApiAndUserInfo_AnswerAProofsFault_WithADPoPChallenge()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var token = (await UserTokenAsync(key, email)).AccessToken!;

        foreach (var path in new[] { "/api/v1/auth/me", "/connect/userinfo" })
        {
            var url = new Uri(Http.BaseAddress!, path).ToString();
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.TryAddWithoutValidation("Authorization", "DPoP " + token);
            request.Headers.Add("DPoP", new DPoPKey().Proof("GET", url, token));
            using var bearer = new HttpRequestMessage(HttpMethod.Get, path);
            bearer.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);

            var response = await Http.SendAsync(request);
            var asBearer = await Http.SendAsync(bearer);

            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var challenge = Assert.Single(response.Headers.WwwAuthenticate);
            Assert.Equal("DPoP", challenge.Scheme);
            Assert.Contains("error=\"invalid_dpop_proof\"", challenge.Parameter);
            Assert.Contains("algs=\"ES256 ", challenge.Parameter);
            // This server asks for no nonce unless told to.
            Assert.False(response.Headers.Contains("DPoP-Nonce"));
            Assert.Equal(HttpStatusCode.Unauthorized, asBearer.StatusCode);
            var bearerChallenge = Assert.Single(asBearer.Headers.WwwAuthenticate);
            Assert.Equal("Bearer", bearerChallenge.Scheme);
            Assert.Contains("error=\"invalid_token\"", bearerChallenge.Parameter);
            // The seed's error shape all the same.
            if (path.StartsWith("/api/", StringComparison.Ordinal))
                Assert.Equal("UNAUTHORIZED", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        }
    }

    /// <summary>The seed's auth API is the token endpoint in JSON: a login with a proof gets a DPoP token too, and says so.</summary>
    [Fact]
    public async Task AuthApiLogin_WithAProof_GivesADPoPToken_WithoutOne_ABearerToken()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var loginUrl = new Uri(Http.BaseAddress!, "api/v1/auth/login").ToString();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login") { Content = System.Net.Http.Json.JsonContent.Create(new { email, password = Password }) };
        request.Headers.Add("DPoP", key.Proof("POST", loginUrl));

        var bound = JsonDocument.Parse(await (await Http.SendAsync(request)).Content.ReadAsStringAsync()).RootElement;
        var (_, plain, _) = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });

        Assert.Equal("DPoP", bound.GetProperty("token_type").GetString());
        var token = bound.GetProperty("access_token").GetString()!;
        Assert.Equal(key.Thumbprint, Cnf(token));
        Assert.Equal(HttpStatusCode.OK, await MeAsync("DPoP", token, key.Proof("GET", MeUrl, token)));
        Assert.Equal("Bearer", plain.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task BearerToken_SentWithTheDPoPScheme_IsRefused_AsBearerItWorks()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var bearer = (await PasswordGrantAsync(email)).AccessToken!;

        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync("DPoP", bearer, key.Proof("GET", MeUrl, bearer)));
        Assert.Equal(HttpStatusCode.OK, await MeAsync("Bearer", bearer));
    }

    [Fact]
    public async Task Introspection_ShowsTheBinding_ForAnApiToCheck()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var token = (await UserTokenAsync(key, email)).AccessToken!;

        var introspection = await IntrospectAsync(token);

        Assert.True(introspection.IsActive);
        Assert.Equal(key.Thumbprint, introspection.Json!.Value.GetProperty("cnf").GetProperty("jkt").GetString());
    }

    /// <summary>A confidential client's refresh token stays bound to its credentials only (§5); each access token to the proof's key.</summary>
    [Fact]
    public async Task ConfidentialClient_Refresh_BindsTheNewAccessTokenToTheNewProofsKey()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        var first = await UserTokenAsync(key, email);

        var next = new DPoPKey();
        var refreshed = await RefreshWithAsync(first.RefreshToken!, confidential: true, next.Proof("POST", TokenUrl));

        Assert.False(refreshed.IsError, refreshed.Error + ": " + refreshed.ErrorDescription);
        Assert.Equal("DPoP", refreshed.TokenType);
        Assert.Equal(next.Thumbprint, Cnf(refreshed.AccessToken!));
        var plain = await RefreshAsync(refreshed.RefreshToken!);
        Assert.False(plain.IsError, plain.Error + ": " + plain.ErrorDescription);
        Assert.Equal("Bearer", plain.TokenType);
    }

    /// <summary>
    /// A code for a new user, through the login page (and the consent page, for the SPA), and a redemption of it with the
    /// given proofs (each call a new token request for the same code). The SPA is public; the web app confidential.
    /// </summary>
    async Task<Func<string[], Task<TokenResponse>>> CodeAsync(string scope, Duende.IdentityModel.Client.Parameters? authorizationParameters = null,
        bool confidential = false)
    {
        var email = await CreateUserAsync();
        var (clientId, secret, redirect) = confidential
            ? (ServerFactory.Web, ServerFactory.WebSecret, ServerFactory.WebRedirect)
            : (ServerFactory.Spa, null, ServerFactory.SpaRedirect);
        var client = new OidcClient(new OidcClientOptions
        {
            Authority = Issuer, ClientId = clientId, ClientSecret = secret, RedirectUri = redirect, Scope = scope,
            HttpClientFactory = _ => Factory.CreateClient(), DisablePushedAuthorization = true,
        });
        var state = await client.PrepareLoginAsync(authorizationParameters ?? []);
        var browser = new Browser(Factory);
        var back = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);
        // The web app's consent is implicit: the login goes straight back to it.
        if (back.LeftTo is null)
            back = await browser.SubmitAsync(back, button: "consent", value: "accept");
        var code = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(back.LeftTo!.Query)["code"].ToString();
        return proofs =>
        {
            var request = new AuthorizationCodeTokenRequest
            {
                Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Code = code, RedirectUri = redirect, CodeVerifier = state.CodeVerifier,
            };
            foreach (var proof in proofs)
                request.Headers.Add("DPoP", proof);
            return Http.RequestAuthorizationCodeTokenAsync(request);
        };
    }

    /// <summary>dpop_jkt on the authorization request (§10): the code is redeemed only with a proof of that key.</summary>
    [Fact]
    public async Task CodeAskedWithDPoPJkt_IsRedeemedOnlyWithThatKeysProof()
    {
        var key = new DPoPKey();
        var redeem = await CodeAsync("openid identity", new Duende.IdentityModel.Client.Parameters { { "dpop_jkt", key.Thumbprint } });

        var withoutProof = await redeem([]);
        var otherKey = await redeem([new DPoPKey().Proof("POST", TokenUrl)]);
        var sameKey = await redeem([key.Proof("POST", TokenUrl)]);

        Assert.Equal("invalid_dpop_proof", withoutProof.Error);
        Assert.Equal("invalid_dpop_proof", otherKey.Error);
        Assert.False(sameKey.IsError, sameKey.Error + ": " + sameKey.ErrorDescription);
        Assert.Equal(key.Thumbprint, Cnf(sameKey.AccessToken!));
    }

    /// <summary>
    /// A confidential client's code bound with dpop_jkt binds that redemption only: its refresh token stays bound to its
    /// credentials, so a refresh may bring another key's proof, or none (§5).
    /// </summary>
    [Fact]
    public async Task ConfidentialClient_CodeBoundWithDPoPJkt_DoesNotBindItsRefreshToken()
    {
        var key = new DPoPKey();
        var redeem = await CodeAsync("openid offline_access identity", new Duende.IdentityModel.Client.Parameters { { "dpop_jkt", key.Thumbprint } },
            confidential: true);
        var tokens = await redeem([key.Proof("POST", TokenUrl)]);
        Assert.False(tokens.IsError, tokens.Error + ": " + tokens.ErrorDescription);

        var next = new DPoPKey();
        var rebound = await RefreshWithAsync(tokens.RefreshToken!, confidential: true, next.Proof("POST", TokenUrl));
        Assert.False(rebound.IsError, rebound.Error + ": " + rebound.ErrorDescription);
        var plain = await RefreshAsync(rebound.RefreshToken!);

        Assert.Equal(next.Thumbprint, Cnf(rebound.AccessToken!));
        Assert.False(plain.IsError, plain.Error + ": " + plain.ErrorDescription);
        Assert.Equal("Bearer", plain.TokenType);
    }

    /// <summary>A public client has no credentials: its refresh token is bound to the key, and only a proof of that key redeems it.</summary>
    [Fact]
    public async Task PublicClient_CodeFlowWithAProof_BindsItsRefreshToken()
    {
        var key = new DPoPKey();
        var tokens = await (await CodeAsync("openid offline_access identity"))([key.Proof("POST", TokenUrl)]);
        Assert.False(tokens.IsError, tokens.Error + ": " + tokens.ErrorDescription);
        Assert.Equal(key.Thumbprint, Cnf(tokens.AccessToken!));

        var withoutProof = await RefreshWithAsync(tokens.RefreshToken!, confidential: false);
        var otherKey = await RefreshWithAsync(tokens.RefreshToken!, confidential: false, new DPoPKey().Proof("POST", TokenUrl));
        var sameKey = await RefreshWithAsync(tokens.RefreshToken!, confidential: false, key.Proof("POST", TokenUrl));

        Assert.Equal("invalid_dpop_proof", withoutProof.Error);
        Assert.Equal("invalid_dpop_proof", otherKey.Error);
        Assert.False(sameKey.IsError, sameKey.Error + ": " + sameKey.ErrorDescription);
        Assert.Equal("DPoP", sameKey.TokenType);
        Assert.Equal(key.Thumbprint, Cnf(sameKey.AccessToken!));
    }
}

/// <summary>A second opinion: panva's certified openid-client (node) makes the proofs, gets a token and calls an API with it.</summary>
public sealed class DPoPInteropTests(KestrelServer server) : ServerTests<KestrelServer>(server)
{
    [Fact]
    public void OpenIdClient_GetsABoundToken_AndUsesItWithProofs_NotAsABearerToken()
    {
        var result = DPoPInterop.Run(Issuer, new Uri(Http.BaseAddress!, "scim/v2/ServiceProviderConfig").ToString());

        Assert.Equal("dpop", result.GetProperty("tokenType").GetString(), ignoreCase: true);
        Assert.Equal(200, result.GetProperty("withProof").GetInt32());
        Assert.Equal(200, result.GetProperty("again").GetInt32());
        Assert.Equal(401, result.GetProperty("asBearer").GetInt32());
        Assert.False(string.IsNullOrEmpty(result.GetProperty("jkt").GetString()));
    }
}

/// <summary>tools/openid-client/interop.mjs: openid-client's DPoP as the provisioner client, against a SCIM resource of the server.</summary>
public static class DPoPInterop
{
    public static JsonElement Run(string issuer, string resource) =>
        JsonDocument.Parse(NodeTools.Run("openid-client", "interop.mjs", environment: new Dictionary<string, string>
        {
            ["ISSUER"] = issuer,
            ["CLIENT_ID"] = ServerFactory.Provisioner,
            ["CLIENT_SECRET"] = ServerFactory.ProvisionerSecret,
            ["SCOPE"] = "scim",
            ["RESOURCE"] = resource,
        })).RootElement;
}
