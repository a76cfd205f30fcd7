using Identity.Server.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Microsoft.Identity.Web;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Client;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Federation;

/// <summary>
/// The external providers, each through the library made for it: Google through ASP.NET Core's Google handler,
/// Microsoft through Microsoft.Identity.Web, GitHub through OpenIddict's web providers and any other OpenID Connect
/// provider through the OpenIddict client. Every one of them ends the same way: the provider's answer in the
/// external cookie, read by the login page.
/// </summary>
public static class FederationSetup
{
    /// <summary>Where each provider sends the browser back: /signin/{provider}.</summary>
    public const string CallbackPrefix = "/signin/";

    public static WebApplicationBuilder AddFederation(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(FederationOptions.Section).Get<FederationOptions>() ?? new();
        // http authorities only where tokens may travel in the clear anyway (TransportSecurity): Development.
        var providers = options.Validate(allowHttpAuthorities: builder.Environment.IsDevelopment());
        builder.Services.AddSingleton(new ExternalProviders(providers));
        builder.Services.AddSingleton(options);
        builder.Services.AddScoped<ExternalAccounts>();
        builder.Services.AddScoped<UpstreamClient>();
        builder.Services.AddHttpClient(UpstreamClient.HttpClientName, http =>
        {
            http.Timeout = TimeSpan.FromSeconds(15);
            // GitHub's API refuses requests without a User-Agent.
            http.DefaultRequestHeaders.UserAgent.ParseAdd("Identity/1.0");
        });

        var authentication = builder.Services.AddAuthentication();
        if (options.Google?.IsSet == true)
        {
            authentication.AddGoogle(ExternalProvider.Google, "Google", google =>
            {
                google.ClientId = options.Google.ClientId!;
                google.ClientSecret = options.Google.ClientSecret!;
                google.SignInScheme = IdentityConstants.ExternalScheme;
                google.CallbackPath = CallbackPrefix + ExternalProvider.Google;
                google.UsePkce = true;
                // The userinfo answer says whether Google verified the address; linking to an existing account needs it.
                google.ClaimActions.MapJsonKey(Claims.EmailVerified, Claims.EmailVerified);
                google.Events.OnRemoteFailure = BackToLogin;
            });
        }

        if (options.Microsoft?.IsSet == true)
        {
            var microsoft = options.Microsoft;
            authentication.AddMicrosoftIdentityWebApp(identity =>
            {
                identity.Instance = microsoft.Instance;
                identity.TenantId = microsoft.TenantId;
                identity.ClientId = microsoft.ClientId;
                identity.ClientSecret = microsoft.ClientSecret;
                identity.CallbackPath = CallbackPrefix + ExternalProvider.Microsoft;
                identity.ResponseType = "code";
                identity.UsePkce = true;
                identity.Scope.Add(Scopes.Email);
            }, cookie => { }, openIdConnectScheme: ExternalProvider.Microsoft, cookieScheme: null, displayName: "Microsoft");
            // The sign-in lands in the external cookie like every other provider's, not in a cookie of its own.
            builder.Services.PostConfigure<OpenIdConnectOptions>(ExternalProvider.Microsoft, oidc =>
            {
                oidc.SignInScheme = IdentityConstants.ExternalScheme;
                oidc.SignOutScheme = IdentityConstants.ExternalScheme;
                oidc.Events.OnRemoteFailure = BackToLogin;
            });
        }

        var openIddictProviders = providers.Where(p => p.Kind is ProviderKind.GitHub or ProviderKind.Oidc).ToList();
        if (openIddictProviders.Count > 0)
        {
            builder.Services.AddOpenIddict().AddClient(client =>
            {
                client.AllowAuthorizationCodeFlow();
                client.SetRedirectionEndpointUris(openIddictProviders.Select(p => CallbackPrefix.TrimStart('/') + p.Name).ToArray());
                client.UseAspNetCore()
                    .EnableRedirectionEndpointPassthrough()
                    // A refused or forged answer reaches our callback too, which sends the user back to the login page.
                    .EnableErrorPassthrough()
                    // TransportSecurity enforces HTTPS itself, with the loopback and Development exceptions.
                    .DisableTransportSecurityRequirement();
                // A user waits on the login page while the provider is asked: two quick retries, not OpenIddict's
                // default half-minute of back-off, then the login page says the provider did not answer.
                client.UseSystemNetHttp()
                    .SetProductInformation(typeof(FederationSetup).Assembly)
                    .SetHttpResiliencePipeline(pipeline => pipeline
                        .AddRetry(new HttpRetryStrategyOptions { MaxRetryAttempts = 2, Delay = TimeSpan.FromMilliseconds(200), UseJitter = true })
                        .AddTimeout(TimeSpan.FromSeconds(10)));

                if (options.GitHub?.IsSet == true)
                {
                    client.UseWebProviders().AddGitHub(github => github
                        .SetClientId(options.GitHub.ClientId!)
                        .SetClientSecret(options.GitHub.ClientSecret!)
                        .SetProviderName(ExternalProvider.GitHub)
                        // A stable id, the same on every instance and after restarts (OpenIddict names state and clients by it).
                        .SetRegistrationId(ExternalProvider.GitHub)
                        .SetRedirectUri(CallbackPrefix.TrimStart('/') + ExternalProvider.GitHub)
                        .AddScopes("user:email"));
                }
                foreach (var oidc in options.Oidc)
                {
                    var registration = new OpenIddictClientRegistration
                    {
                        Issuer = new Uri(oidc.Authority!, UriKind.Absolute),
                        ProviderName = oidc.Name,
                        ProviderDisplayName = oidc.DisplayName ?? oidc.Name,
                        ClientId = oidc.ClientId,
                        ClientSecret = oidc.ClientSecret,
                        RedirectUri = new Uri(CallbackPrefix.TrimStart('/') + oidc.Name, UriKind.Relative),
                    };
                    registration.Scopes.UnionWith(oidc.Scopes);
                    client.AddRegistration(registration);
                }
            });
            // The client's state tokens are signed and encrypted with the server's own certificates.
            builder.Services.AddOptions<OpenIddictClientOptions>().Configure<SigningKeys>((client, keys) =>
            {
                client.SigningCredentials.Add(new SigningCredentials(new X509SecurityKey(keys.Rsa), SecurityAlgorithms.RsaSha256));
                client.EncryptionCredentials.Add(new EncryptingCredentials(new X509SecurityKey(keys.Encryption),
                    SecurityAlgorithms.RsaOAEP, SecurityAlgorithms.Aes256CbcHmacSha512));
            });
        }
        return builder;
    }

    /// <summary>A refused or broken answer from a provider sends the user back to the login page, not to an error page.</summary>
    static async Task BackToLogin(RemoteFailureContext context)
    {
        await context.HttpContext.RequestServices.GetRequiredService<Events.SecurityEvents>().RaiseNowAsync(Events.EventTypes.AuthFailed, null,
            new { reason = "external_sign_in_failed", provider = context.Scheme.Name }, success: false);
        context.Response.Redirect("/Account/Login?error=external");
        context.HandleResponse();
    }
}
