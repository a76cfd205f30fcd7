using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Users;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>Base of a test class that shares one server: users, token requests and JWT checks done as a client would.</summary>
public abstract class ServerTests<TFactory>(TFactory factory) : IClassFixture<TFactory> where TFactory : ServerFactory
{
    public const string Password = "a long enough passphrase";

    protected TFactory Factory { get; } = factory;
    protected HttpClient Http { get; } = factory.CreateClient();
    protected string Issuer => Http.BaseAddress!.ToString();

    protected Task<string> CreateUserAsync(params string[] roles) => CreateUserInAsync("example.test", roles);

    /// <summary>A verified account at <paramref name="domain"/> with the role user plus <paramref name="roles"/>.</summary>
    protected async Task<string> CreateUserInAsync(string domain, params string[] roles)
    {
        var email = $"user-{Guid.NewGuid():N}@{domain}";
        using var scope = Factory.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDbContext>();
        var user = new User { Email = email, Name = "Test User", EmailConfirmed = true };
        var events = scope.ServiceProvider.GetRequiredService<Identity.Server.Events.SecurityEvents>();
        Assert.True((await Accounts.CreateAsync(users, db, events, user, Password, roles)).Succeeded);
        return email;
    }

    /// <summary>How long a refresh token lasts, as the token itself says (refresh tokens have no rows of their own).</summary>
    protected async Task<TimeSpan> RefreshTokenLifetimeAsync(string refreshToken)
    {
        var token = await OpenWithSecretKeysAsync(refreshToken);
        return token.ValidTo - token.IssuedAt;
    }

    /// <summary>Verifies (and for an authorization code, decrypts) a token with keys/private-tokens.key, as only the server can.</summary>
    protected async Task<JsonWebToken> OpenWithSecretKeysAsync(string token)
    {
        var key = await File.ReadAllBytesAsync(Path.Combine(Factory.KeyFolder, "private-tokens.key"));
        var handler = new JsonWebTokenHandler();
        var result = await handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidateIssuer = false,
            ValidateAudience = false,
            IssuerSigningKey = new SymmetricSecurityKey(key[..32]),
            TokenDecryptionKey = new SymmetricSecurityKey(key[32..]),
            TryAllIssuerSigningKeys = true,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var verified = (JsonWebToken)result.SecurityToken;
        return verified.InnerToken ?? verified;
    }

    /// <summary>Calls a resource API as a client would: JSON in, status and parsed JSON out.</summary>
    protected async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> ApiAsync(
        HttpMethod method, string path, string? token = null, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
            request.SetBearerToken(token);
        if (body is not null)
            request.Content = body as HttpContent ?? JsonContent.Create(body);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    /// <summary>A real OpenID Connect client of this server, as an app would use (its pushed requests left out).</summary>
    protected OidcClient OidcClientFor(string clientId, string redirectUri, string scope) => new(new OidcClientOptions
    {
        Authority = Issuer, ClientId = clientId, RedirectUri = redirectUri, Scope = scope,
        HttpClientFactory = _ => Factory.CreateClient(), DisablePushedAuthorization = true,
    });

    /// <summary>
    /// <paramref name="client"/> signs a user in through <paramref name="browser"/>: the login page when
    /// <paramref name="email"/> is given (else the browser's session answers), the consent page when it is shown.
    /// </summary>
    protected static async Task<LoginResult> SignInThroughAsync(Browser browser, OidcClient client, string? email = null)
    {
        var state = await client.PrepareLoginAsync();
        var page = await browser.OpenAsync(state.StartUrl);
        if (email is not null)
            page = await browser.LoginAsync(page, email, Password);
        if (page.Url.AbsolutePath == "/Account/Consent")
            page = await browser.SubmitAsync(page, button: "consent", value: "accept");
        var result = await client.ProcessResponseAsync(page.LeftTo!.ToString(), state);
        Assert.False(result.IsError, result.Error);
        return result;
    }

    /// <summary>An authorization request of the code flow (scope openid, a fresh state), with <paramref name="extra"/> parameters over those.</summary>
    protected static string AuthorizeUrl(string clientId, string redirectUri, params (string Key, string Value)[] extra)
    {
        var parameters = new Dictionary<string, string?>
        {
            ["client_id"] = clientId, ["redirect_uri"] = redirectUri, ["response_type"] = "code", ["scope"] = "openid",
            ["state"] = Guid.NewGuid().ToString("N"),
        };
        foreach (var (key, value) in extra)
            parameters[key] = value;
        return Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString("/connect/authorize", parameters);
    }

    /// <summary>
    /// Sets up TOTP for the user through the MFA API and confirms it with the current step's code; the key. That code is
    /// spent: the next login uses the next step's.
    /// </summary>
    protected async Task<byte[]> EnrollTotpAsync(string email)
    {
        var token = await LoginAsync(email);
        var setup = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "totp" });
        var key = Otp.Base32Decode(setup.Body.GetProperty("secret").GetString()!);
        var verified = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = Otp.Totp(key, DateTimeOffset.UtcNow), method = "totp" });
        Assert.Equal(HttpStatusCode.OK, verified.Status);
        return key;
    }

    /// <summary>POST /api/v1/auth/login; the access token, or null with the failure.</summary>
    protected async Task<string> LoginAsync(string email, string password = Password)
    {
        var (status, body, _) = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password });
        Assert.True(status == HttpStatusCode.OK, $"login failed: {status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>The error code of the seed's envelope, after checking the envelope's shape and its request id header.</summary>
    protected static string ErrorCode((HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response) answer)
    {
        var error = answer.Body.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(answer.Response.Headers.GetValues("X-Request-Id").Single(), error.GetProperty("request_id").GetString());
        return error.GetProperty("code").GetString()!;
    }

    protected Task<TokenResponse> PasswordGrantAsync(string email, string password = Password, string scope = "openid profile email roles offline_access identity") =>
        Http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            UserName = email,
            Password = password,
            Scope = scope,
        });

    protected Task<TokenResponse> RefreshAsync(string refreshToken) =>
        Http.RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = "/connect/token",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            RefreshToken = refreshToken,
        });

    protected Task<TokenIntrospectionResponse> IntrospectAsync(string token) =>
        Http.IntrospectTokenAsync(new TokenIntrospectionRequest
        {
            Address = "/connect/introspect",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            Token = token,
        });

    /// <summary>RFC 7009 revocation as the web client, the client the password grant's tokens are issued to.</summary>
    protected Task<TokenRevocationResponse> RevokeAsync(string token) =>
        Http.RevokeTokenAsync(new TokenRevocationRequest
        {
            Address = "/connect/revoke",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            Token = token,
        });

    protected async Task<HttpResponseMessage> CallApiAsync(string accessToken, string path = "/api/v1/auth/me")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.SetBearerToken(accessToken);
        return await Http.SendAsync(request);
    }

    /// <summary>Validates a token as a third-party API would: signature against the published JWKS, issuer, audience, lifetime.</summary>
    protected async Task<JsonWebToken> ValidateJwtAsync(string token, string audience)
    {
        var jwks = new JsonWebKeySet(await Http.GetStringAsync("/.well-known/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }
}
