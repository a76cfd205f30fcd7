using System.Collections.Concurrent;
using Microsoft.AspNetCore.Authentication.Google;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Security.Cryptography;
using Microsoft.Identity.Web;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// A server with Google, GitHub and Microsoft configured, offline. Google's token and userinfo endpoints can be set,
/// so they point at a <see cref="LocalProvider"/> on 127.0.0.1; its authorization endpoint stays Google's own.
/// Microsoft's metadata is given in place of the download from login.microsoftonline.com: its published
/// authorization endpoint, and a local token endpoint whose identity tokens are signed with a key the metadata lists.
/// A fourth provider cannot be reached at all.
/// </summary>
public class SocialProvidersServer : ServerFactory
{
    public const string GoogleClientId = "google-client-id.apps.googleusercontent.com";
    public const string GitHubClientId = "github-client-id";
    public const string MicrosoftClientId = "00000000-0000-0000-0000-00000000abcd";
    public const string AppRedirect = "https://app.example.test/oauth-callback";
    public const string Unreachable = "unreachable";

    public const string MicrosoftIssuer = "https://login.microsoftonline.com/{tenantid}/v2.0";

    public LocalProvider Google { get; } = new(GoogleClientId, "google-secret");
    public LocalProvider Microsoft { get; } = new(MicrosoftClientId, "microsoft-secret", MicrosoftIssuer);
    public GitHubApi GitHub { get; } = new();

    public SocialProvidersServer() : this([]) { }

    /// <summary>The same providers, with <paramref name="extra"/> settings of a test's own.</summary>
    protected SocialProvidersServer(IEnumerable<KeyValuePair<string, string?>> extra) : base(DatabaseSettings.Sqlite(), overrides: Settings().Concat(extra)) { }

    static IEnumerable<KeyValuePair<string, string?>> Settings()
    {
        string[] settings =
        [
            "Identity:ExternalProviders:Google:ClientId", GoogleClientId,
            "Identity:ExternalProviders:Google:ClientSecret", "google-secret",
            "Identity:ExternalProviders:GitHub:ClientId", GitHubClientId,
            "Identity:ExternalProviders:GitHub:ClientSecret", "github-secret",
            "Identity:ExternalProviders:Microsoft:ClientId", MicrosoftClientId,
            "Identity:ExternalProviders:Microsoft:ClientSecret", "microsoft-secret",
            "Identity:ExternalProviders:RedirectUris:0", AppRedirect,
            // A provider whose metadata cannot be fetched: nothing listens on the discard port.
            "Identity:ExternalProviders:Oidc:0:Name", Unreachable,
            "Identity:ExternalProviders:Oidc:0:Authority", "http://127.0.0.1:9/",
            "Identity:ExternalProviders:Oidc:0:ClientId", "client",
            "Identity:ExternalProviders:Oidc:0:ClientSecret", "secret",
        ];
        for (var i = 0; i < settings.Length; i += 2)
            yield return new(settings[i], settings[i + 1]);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services =>
        {
            services.PostConfigure<GoogleOptions>("google", google =>
            {
                google.TokenEndpoint = Google.Url + "/token";
                google.UserInformationEndpoint = Google.Url + "/userinfo";
            });
            services.PostConfigure<OpenIdConnectOptions>("microsoft", microsoft =>
            {
                var metadata = new OpenIdConnectConfiguration
                {
                    Issuer = MicrosoftIssuer,
                    AuthorizationEndpoint = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                    TokenEndpoint = Microsoft.Url + "/token",
                    UserInfoEndpoint = Microsoft.Url + "/userinfo",
                };
                metadata.SigningKeys.Add(Microsoft.SigningKey);
                microsoft.ConfigurationManager = new StaticConfigurationManager<OpenIdConnectConfiguration>(metadata);
            });
            // Microsoft.Identity.Web checks the token's issuer against the tenant-independent metadata, which it
            // downloads through the HttpClient its options name: that document is answered here.
            services.Configure<AadIssuerValidatorOptions>(options => options.HttpClientName = "microsoft-metadata");
            // GitHub's endpoints are fixed in OpenIddict's web providers; the HttpClient OpenIddict names after the
            // registration (base64url of the SHA-256 of its id, "github") is answered here.
            var registration = Base64UrlEncoder.Encode(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("github")));
            // OpenIddict keeps its own primary handler, so GitHub is answered by a handler in front of it.
            services.AddHttpClient("OpenIddict.Client.SystemNetHttp:" + registration).AddHttpMessageHandler(() => new GitHubApi.Handler(GitHub));
            // The server's own calls to providers (the emails API, the auth API's code exchange) go through "upstream".
            services.AddHttpClient("upstream").AddHttpMessageHandler(() => new GitHubApi.Handler(GitHub));
            services.AddHttpClient("microsoft-metadata").ConfigurePrimaryHttpMessageHandler(() => new MicrosoftMetadata());
        });
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            Google.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Microsoft.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}

/// <summary>The common-endpoint metadata of login.microsoftonline.com, as far as issuer validation reads it.</summary>
sealed class MicrosoftMetadata : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        Task.FromResult(request.RequestUri!.AbsolutePath.EndsWith("/.well-known/openid-configuration", StringComparison.Ordinal)
            ? new HttpResponseMessage(System.Net.HttpStatusCode.OK)
            {
                Content = new StringContent(System.Text.Json.JsonSerializer.Serialize(new
                {
                    issuer = SocialProvidersServer.MicrosoftIssuer,
                    authorization_endpoint = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                }), System.Text.Encoding.UTF8, "application/json"),
            }
            : new HttpResponseMessage(System.Net.HttpStatusCode.NotFound));
}

/// <summary>
/// github.com's token endpoint and api.github.com's user and emails, answered in process: a code it issued
/// (<see cref="Issue"/>) buys an access token once, which reads the account. Every request is kept.
/// </summary>
public sealed class GitHubApi
{
    /// <summary>Answers for github.com and api.github.com in place of the network; passes every other request on.</summary>
    public sealed class Handler(GitHubApi api) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            request.RequestUri!.Host is "github.com" or "api.github.com" ? api.AnswerAsync(request, cancellationToken) : base.SendAsync(request, cancellationToken);
    }

    public sealed record Account(long Id, string Login, string Name, string? PublicEmail, string PrimaryEmail, bool PrimaryVerified);

    readonly ConcurrentDictionary<string, Account> codes = new();
    readonly ConcurrentDictionary<string, Account> accessTokens = new();
    public ConcurrentQueue<string> Requests { get; } = new();

    public string Issue(Account account)
    {
        var code = Guid.NewGuid().ToString("N")[..20];
        codes[code] = account;
        return code;
    }

    async Task<HttpResponseMessage> AnswerAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var uri = request.RequestUri!;
        Requests.Enqueue($"{request.Method} {uri.GetLeftPart(UriPartial.Path)}");
        if (uri.Host == "github.com" && uri.AbsolutePath == "/login/oauth/access_token")
        {
            var form = System.Web.HttpUtility.ParseQueryString(await request.Content!.ReadAsStringAsync(cancellationToken));
            var basic = request.Headers.Authorization?.Parameter is { } p ? System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(p)) : null;
            var secretOk = form["client_secret"] == "github-secret" || basic == SocialProvidersServer.GitHubClientId + ":github-secret";
            if (!secretOk || !codes.TryRemove(form["code"] ?? "", out var account))
                return Json(new { error = "bad_verification_code" });
            var token = "gho_" + Guid.NewGuid().ToString("N");
            accessTokens[token] = account;
            return Json(new { access_token = token, token_type = "bearer", scope = "user:email" });
        }
        if (uri.Host == "api.github.com" && accessTokens.TryGetValue(request.Headers.Authorization?.Parameter ?? "", out var owner))
        {
            if (uri.AbsolutePath == "/user")
                return Json(new { id = owner.Id, login = owner.Login, name = owner.Name, email = owner.PublicEmail });
            if (uri.AbsolutePath == "/user/emails")
                return Json(new[] { new { email = owner.PrimaryEmail, primary = true, verified = owner.PrimaryVerified, visibility = "private" } });
        }
        return new HttpResponseMessage(System.Net.HttpStatusCode.Unauthorized) { Content = new StringContent("{\"message\":\"Bad credentials\"}") };
    }

    static HttpResponseMessage Json(object body) => new(System.Net.HttpStatusCode.OK)
    {
        Content = new StringContent(System.Text.Json.JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"),
    };
}

/// <summary>
/// A provider's token and userinfo endpoints, served locally: a code it issued (<see cref="Issue"/>) buys an access
/// token once (and, for an OpenID provider, an identity token signed with <see cref="SigningKey"/>), and the access
/// token reads the user. Every token request is kept for the tests to inspect.
/// </summary>
public sealed class LocalProvider : IAsyncDisposable
{
    public sealed record Account(string Sub, string Email, bool EmailVerified, string Name, string? Nonce = null, string? TenantId = null);

    readonly WebApplication app;
    readonly ConcurrentDictionary<string, Account> codes = new();
    readonly ConcurrentDictionary<string, Account> accessTokens = new();
    public ConcurrentQueue<IReadOnlyDictionary<string, string>> TokenRequests { get; } = new();
    public RsaSecurityKey SigningKey { get; } = new(RSA.Create(2048)) { KeyId = "local-provider" };
    public string Url { get; }

    /// <summary>A code whose redemption meets an outage: the token endpoint answers 503.</summary>
    public const string OutageCode = "outage";

    /// <param name="issuer">The identity token's issuer ({tenantid} is replaced by the account's tenant); null for OAuth only.</param>
    public LocalProvider(string clientId, string clientSecret, string? issuer = null)
    {
        (app, Url) = LoopbackServer.Start(web =>
        {
            web.MapPost("/token", async (HttpContext http) =>
            {
                var form = (await http.Request.ReadFormAsync()).ToDictionary(f => f.Key, f => f.Value.ToString());
                TokenRequests.Enqueue(form);
                if (form.GetValueOrDefault("code") == OutageCode)
                    return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
                if (form.GetValueOrDefault("client_secret") != clientSecret || !codes.TryRemove(form.GetValueOrDefault("code") ?? "", out var account))
                    return Results.Json(new { error = "invalid_grant" }, statusCode: 400);
                var token = Guid.NewGuid().ToString("N");
                accessTokens[token] = account;
                var idToken = issuer is null ? null : new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
                {
                    Issuer = issuer.Replace("{tenantid}", account.TenantId),
                    Audience = clientId,
                    Expires = DateTime.UtcNow.AddMinutes(5),
                    SigningCredentials = new SigningCredentials(SigningKey, SecurityAlgorithms.RsaSha256),
                    Claims = new Dictionary<string, object>
                    {
                        ["sub"] = account.Sub, ["oid"] = account.Sub, ["tid"] = account.TenantId ?? "", ["email"] = account.Email,
                        ["preferred_username"] = account.Email, ["name"] = account.Name, ["nonce"] = account.Nonce ?? "", ["ver"] = "2.0",
                    },
                });
                return Results.Json(new { access_token = token, token_type = "Bearer", expires_in = 3599, id_token = idToken });
            });
            web.MapGet("/userinfo", (HttpContext http) =>
                accessTokens.TryGetValue(http.Request.Headers.Authorization.ToString().Replace("Bearer ", ""), out var account)
                    ? Results.Json(new { sub = account.Sub, email = account.Email, email_verified = account.EmailVerified, name = account.Name })
                    : Results.Unauthorized());
        });
    }

    /// <summary>A code the provider would hand the browser after <paramref name="account"/> signed in.</summary>
    public string Issue(Account account)
    {
        var code = "4/" + Guid.NewGuid().ToString("N");
        codes[code] = account;
        return code;
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
