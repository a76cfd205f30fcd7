using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Connect;
using Identity.Server.Hosting;
using Identity.Server.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Connect;

public sealed class DPoPNonceServer() : KestrelServer([new("Identity:Tokens:RequireDPoPNonce", "true")]);

/// <summary>
/// RFC 9449 §8 and §9 with Identity:Tokens:RequireDPoPNonce: a proof without a nonce this server handed out is answered
/// with use_dpop_nonce and a fresh nonce, at the token endpoint, the APIs and userinfo; signed again with it, it works.
/// </summary>
public sealed class DPoPNonceTests(DPoPNonceServer server) : ServerTests<DPoPNonceServer>(server)
{
    string UrlOf(string path) => new Uri(Http.BaseAddress!, path).ToString();

    static readonly Dictionary<string, string> ServiceGrant = new()
    {
        ["grant_type"] = "client_credentials", ["client_id"] = ServerFactory.Service, ["client_secret"] = ServerFactory.ServiceSecret, ["scope"] = "identity",
    };

    async Task<HttpResponseMessage> TokenRequestAsync(DPoPKey key, string? nonce, Dictionary<string, string>? grant = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new FormUrlEncodedContent(grant ?? ServiceGrant) };
        request.Headers.Add("DPoP", key.Proof("POST", UrlOf("connect/token"), nonce: nonce));
        return await Http.SendAsync(request);
    }

    static string NonceOf(HttpResponseMessage response) => Assert.Single(response.Headers.GetValues("DPoP-Nonce"));

    static async Task<JsonElement> JsonOf(HttpResponseMessage response) => JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    /// <summary>A user's bound token, got as a client does: asked once without a nonce, then with the one given.</summary>
    async Task<string> BoundUserTokenAsync(DPoPKey key)
    {
        var grant = new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = ServerFactory.Web, ["client_secret"] = ServerFactory.WebSecret,
            ["username"] = await CreateUserAsync(), ["password"] = Password, ["scope"] = "openid identity",
        };
        var refused = await TokenRequestAsync(key, null, grant);
        var issued = await TokenRequestAsync(key, NonceOf(refused), grant);
        Assert.Equal(HttpStatusCode.OK, issued.StatusCode);
        return (await JsonOf(issued)).GetProperty("access_token").GetString()!;
    }

    [Fact]
    public async Task TokenRequest_WithoutANonce_IsUseDPoPNonce_WithOne_AndSignedAgainWithIt_IssuesABoundToken()
    {
        var key = new DPoPKey();

        var refused = await TokenRequestAsync(key, null);
        var issued = await TokenRequestAsync(key, NonceOf(refused));

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("use_dpop_nonce", (await JsonOf(refused)).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.OK, issued.StatusCode);
        var body = await JsonOf(issued);
        Assert.Equal("DPoP", body.GetProperty("token_type").GetString());
        // Every answer brings a nonce for the next proof.
        Assert.False(string.IsNullOrEmpty(NonceOf(issued)));
    }

    public static TheoryData<string> ForgedNonces => ["made up", "altered", "empty"];

    [Theory]
    [MemberData(nameof(ForgedNonces))]
    public async Task TokenRequest_WithANonceThisServerDidNotMake_IsUseDPoPNonce(string kind)
    {
        var key = new DPoPKey();
        var given = NonceOf(await TokenRequestAsync(key, null));
        var bytes = Base64UrlEncoder.DecodeBytes(given);
        bytes[3] ^= 1; // the time it names, moved, without a new MAC
        var nonce = kind switch
        {
            "made up" => Base64UrlEncoder.Encode(new byte[bytes.Length]),
            "altered" => Base64UrlEncoder.Encode(bytes),
            _ => "",
        };

        var refused = await TokenRequestAsync(key, nonce);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("use_dpop_nonce", (await JsonOf(refused)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task ClientCredentials_WithoutAProof_StillGetsABearerToken()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = "identity",
        });

        Assert.False(response.IsError, response.Error);
        Assert.Equal("Bearer", response.TokenType);
        Assert.False(response.HttpResponse!.Headers.Contains("DPoP-Nonce"));
    }

    /// <summary>§9: an API asks for its nonce with a 401 and a DPoP challenge naming use_dpop_nonce, and takes the proof signed with it.</summary>
    [Theory]
    [InlineData("/api/v1/auth/me")]
    [InlineData("/connect/userinfo")]
    public async Task BoundToken_AtAnApi_WithoutTheNonce_IsChallengedForIt_WithIt_IsTaken(string path)
    {
        var key = new DPoPKey();
        var token = await BoundUserTokenAsync(key);

        async Task<HttpResponseMessage> CallAsync(string? nonce)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.TryAddWithoutValidation("Authorization", "DPoP " + token);
            request.Headers.Add("DPoP", key.Proof("GET", UrlOf(path.TrimStart('/')), token, nonce: nonce));
            return await Http.SendAsync(request);
        }
        var refused = await CallAsync(null);
        var taken = await CallAsync(NonceOf(refused));

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var challenge = Assert.Single(refused.Headers.WwwAuthenticate);
        Assert.Equal("DPoP", challenge.Scheme);
        Assert.Contains("error=\"use_dpop_nonce\"", challenge.Parameter);
        Assert.Equal(HttpStatusCode.OK, taken.StatusCode);
        Assert.False(string.IsNullOrEmpty(NonceOf(taken)));
    }

    /// <summary>The seed's auth API says so in its own error shape, and hands out the nonce the same way.</summary>
    [Fact]
    public async Task AuthApiLogin_WithoutTheNonce_AnswersInTheSeedsShape_WithIt_GivesADPoPToken()
    {
        var key = new DPoPKey();
        var email = await CreateUserAsync();
        async Task<HttpResponseMessage> LoginAsync(string? nonce)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login") { Content = System.Net.Http.Json.JsonContent.Create(new { email, password = Password }) };
            request.Headers.Add("DPoP", key.Proof("POST", UrlOf("api/v1/auth/login"), nonce: nonce));
            return await Http.SendAsync(request);
        }

        var refused = await LoginAsync(null);
        var taken = await LoginAsync(NonceOf(refused));

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var error = (await JsonOf(refused)).GetProperty("error");
        Assert.Equal("INVALID_REQUEST", error.GetProperty("code").GetString());
        Assert.Equal("use_dpop_nonce", error.GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.OK, taken.StatusCode);
        Assert.Equal("DPoP", (await JsonOf(taken)).GetProperty("token_type").GetString());
    }

    /// <summary>A second opinion: openid-client retries on use_dpop_nonce by itself, at the token endpoint and at the API.</summary>
    [Fact]
    public void OpenIdClient_FollowsTheServersNonces_AndGetsAndUsesABoundToken()
    {
        var result = DPoPInterop.Run(Issuer, UrlOf("scim/v2/ServiceProviderConfig"));

        Assert.Equal("dpop", result.GetProperty("tokenType").GetString(), ignoreCase: true);
        Assert.Equal(200, result.GetProperty("withProof").GetInt32());
        Assert.Equal(200, result.GetProperty("again").GetInt32());
        Assert.Equal(401, result.GetProperty("asBearer").GetInt32());
    }
}

/// <summary>Nonces themselves: made and checked with the server's keys, on a clock the test moves.</summary>
public sealed class DPoPNonceLifetimeTests
{
    sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = DateTimeOffset.UtcNow;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    static DPoPNonces NoncesOf(string keyFolder, TimeProvider clock) =>
        new(SigningKeys.LoadOrCreate(keyFolder), new TokenOptions { RequireDPoPNonce = true }, clock);

    [Fact]
    public void ANonce_IsTakenForFiveMinutes_ByAnyInstanceWithTheSameKeys_AndByNoOther()
    {
        var folder = Directory.CreateTempSubdirectory("identity-keys-").FullName;
        var clock = new Clock();
        var nonces = NoncesOf(folder, clock);
        var otherInstance = NoncesOf(folder, clock);
        var otherKeys = NoncesOf(Directory.CreateTempSubdirectory("identity-keys-").FullName, clock);

        var nonce = nonces.Issue();

        Assert.True(nonces.IsValid(nonce));
        Assert.True(otherInstance.IsValid(nonce));
        Assert.False(otherKeys.IsValid(nonce));
        clock.Now += DPoPNonces.Lifetime - TimeSpan.FromSeconds(1);
        Assert.True(nonces.IsValid(nonce));
        clock.Now += TimeSpan.FromSeconds(2);
        Assert.False(nonces.IsValid(nonce));
        // Nor one from a clock far ahead.
        clock.Now -= TimeSpan.FromHours(1);
        Assert.False(nonces.IsValid(nonce));
    }
}
