using System.Collections.Concurrent;
using Microsoft.AspNetCore.Authentication.Google;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// A server with Google, GitHub and Microsoft configured, offline. Google's token and userinfo endpoints can be set,
/// so they point at <see cref="FakeGoogle"/> on 127.0.0.1; its authorization endpoint stays Google's own. Microsoft's
/// metadata is given in place of the download from login.microsoftonline.com (its authorization endpoint as published).
/// A fourth provider cannot be reached at all.
/// </summary>
public sealed class SocialProvidersServer : ServerFactory
{
    public const string GoogleClientId = "google-client-id.apps.googleusercontent.com";
    public const string GitHubClientId = "github-client-id";
    public const string MicrosoftClientId = "00000000-0000-0000-0000-00000000abcd";
    public const string AppRedirect = "https://app.example.test/oauth-callback";
    public const string Unreachable = "unreachable";

    public FakeGoogle Google { get; } = new();

    public SocialProvidersServer() : base(DatabaseSettings.Sqlite(), overrides: Settings()) { }

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
            services.PostConfigure<OpenIdConnectOptions>("microsoft", microsoft => microsoft.ConfigurationManager =
                new StaticConfigurationManager<OpenIdConnectConfiguration>(new OpenIdConnectConfiguration
                {
                    Issuer = "https://login.microsoftonline.com/{tenantid}/v2.0",
                    AuthorizationEndpoint = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                    TokenEndpoint = "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                    UserInfoEndpoint = "https://graph.microsoft.com/oidc/userinfo",
                }));
        });
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
            Google.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

/// <summary>
/// Google's token and userinfo endpoints, served locally: a code it issued (<see cref="Issue"/>) buys an access
/// token once, and the access token reads the user. Every token request is kept for the tests to inspect.
/// </summary>
public sealed class FakeGoogle : IAsyncDisposable
{
    public sealed record GoogleUser(string Sub, string Email, bool EmailVerified, string Name);

    readonly WebApplication app;
    readonly ConcurrentDictionary<string, GoogleUser> codes = new();
    readonly ConcurrentDictionary<string, GoogleUser> accessTokens = new();
    public ConcurrentQueue<IReadOnlyDictionary<string, string>> TokenRequests { get; } = new();
    public string Url { get; }

    public FakeGoogle()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        app = builder.Build();
        app.MapPost("/token", async (HttpContext http) =>
        {
            var form = (await http.Request.ReadFormAsync()).ToDictionary(f => f.Key, f => f.Value.ToString());
            TokenRequests.Enqueue(form);
            if (form.GetValueOrDefault("client_secret") != "google-secret" || !codes.TryRemove(form.GetValueOrDefault("code") ?? "", out var user))
                return Results.Json(new { error = "invalid_grant" }, statusCode: 400);
            var token = Guid.NewGuid().ToString("N");
            accessTokens[token] = user;
            return Results.Json(new { access_token = token, token_type = "Bearer", expires_in = 3599, scope = "openid email profile" });
        });
        app.MapGet("/userinfo", (HttpContext http) =>
            accessTokens.TryGetValue(http.Request.Headers.Authorization.ToString().Replace("Bearer ", ""), out var user)
                ? Results.Json(new { sub = user.Sub, email = user.Email, email_verified = user.EmailVerified, name = user.Name })
                : Results.Unauthorized());
        app.StartAsync().GetAwaiter().GetResult();
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    /// <summary>A code Google would hand the browser after <paramref name="user"/> signed in.</summary>
    public string Issue(GoogleUser user)
    {
        var code = "4/" + Guid.NewGuid().ToString("N");
        codes[code] = user;
        return code;
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
