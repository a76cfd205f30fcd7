using System.Text.Json;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Application = OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication;

namespace Identity.Server.Hosting;

/// <summary>
/// Cross-origin calls from browser apps (CORS). A single-page app on its own origin calls the token, userinfo,
/// revocation and PAR endpoints and the /api/v1 APIs from JavaScript; the browser lets it read the answers only if
/// this server names its origin. Which origins, as Keycloak's "+" web origin does: the origins of the clients' registered
/// redirect URIs (every browser app registers one), and those of Identity:Cors:Origins, for first-party apps that sign
/// in through /api/v1/auth without redirects. Discovery and the JWKS are public: any origin reads them.
/// Credentials (cookies) are never allowed across origins: these endpoints take tokens and client credentials only,
/// so another site's script can read nothing its own requests could not get.
/// </summary>
public static class BrowserOrigins
{
    public const string Section = "Identity:Cors:Origins";

    /// <summary>Where browser apps call with their tokens or codes; the server's pages, SCIM and the policy endpoints are not.</summary>
    static bool ForApps(PathString path) =>
        path.StartsWithSegments("/api/v1") || path.StartsWithSegments("/connect/token") || path.StartsWithSegments("/connect/userinfo") ||
        path.StartsWithSegments("/connect/revoke") || path.StartsWithSegments("/connect/par");

    static readonly CorsPolicy Public = new CorsPolicyBuilder().AllowAnyOrigin().WithMethods("GET").Build();

    public static WebApplicationBuilder AddBrowserOrigins(this WebApplicationBuilder builder)
    {
        builder.Services.AddCors();
        builder.Services.AddSingleton<AllowedOrigins>();
        builder.Services.AddSingleton<ICorsPolicyProvider, PolicyProvider>();
        return builder;
    }

    /// <summary>Before the endpoints answer: a preflight (OPTIONS) is answered here.</summary>
    public static WebApplication UseBrowserOrigins(this WebApplication app)
    {
        app.UseCors();
        return app;
    }

    sealed class PolicyProvider(AllowedOrigins origins) : ICorsPolicyProvider
    {
        public async Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName)
        {
            var path = context.Request.Path;
            if (path.StartsWithSegments("/.well-known"))
                return Public;
            if (!ForApps(path) || context.Request.Headers.Origin is not [{ } origin])
                return null;
            // The answer depends on the caller's origin: a shared cache must not hand one origin's answer to another.
            context.Response.Headers.Append("Vary", "Origin");
            if (!await origins.ContainsAsync(origin, context.RequestAborted))
                return null;
            return new CorsPolicyBuilder()
                .WithOrigins(origin)
                .WithMethods("GET", "POST", "PUT", "PATCH", "DELETE")
                // DPoP proofs (RFC 9449) travel in a header of their own, as do caller-chosen request ids.
                .WithHeaders("Authorization", "Content-Type", DPoP.Header, "X-Request-Id")
                .WithExposedHeaders(DPoPNonces.Header, "WWW-Authenticate", "X-Request-Id", "Location", "ETag", "Retry-After")
                .SetPreflightMaxAge(TimeSpan.FromMinutes(10))
                .Build();
        }
    }

    /// <summary>
    /// The origins allowed, read from the clients when first asked and again once a client changes (on this instance:
    /// <see cref="ClientSnapshots"/> knows) or after <see cref="ClientSnapshots.MaxAge"/> (another instance's change).
    /// </summary>
    public sealed class AllowedOrigins(IServiceScopeFactory scopes, ClientSnapshots snapshots, IConfiguration configuration, TimeProvider time)
    {
        sealed record Loaded(HashSet<string> Origins, long Version, DateTimeOffset At);

        Loaded? loaded;

        public async ValueTask<bool> ContainsAsync(string origin, CancellationToken cancellationToken)
        {
            var current = loaded;
            if (current is null || current.Version != snapshots.Version || time.GetUtcNow() - current.At >= ClientSnapshots.MaxAge)
                loaded = current = await LoadAsync(cancellationToken);
            return current.Origins.Contains(origin);
        }

        async Task<Loaded> LoadAsync(CancellationToken cancellationToken)
        {
            var version = snapshots.Version;
            var origins = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var origin in configuration.GetSection(Section).Get<string[]>() ?? [])
                Add(origins, origin);
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<Data.IdentityDbContext>();
            var registered = await db.Set<Application>().AsNoTracking().Select(a => new { a.RedirectUris, a.PostLogoutRedirectUris }).ToListAsync(cancellationToken);
            foreach (var uris in registered.SelectMany(a => new[] { a.RedirectUris, a.PostLogoutRedirectUris }))
                foreach (var uri in string.IsNullOrEmpty(uris) ? [] : JsonSerializer.Deserialize<string[]>(uris) ?? [])
                    Add(origins, uri);
            return new(origins, version, time.GetUtcNow());
        }

        /// <summary>A web address's origin as a browser sends it (scheme, host, and the port unless the default); apps' own schemes have none.</summary>
        static void Add(HashSet<string> origins, string address)
        {
            if (Uri.TryCreate(address, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http")
                origins.Add(uri.GetLeftPart(UriPartial.Authority));
        }
    }
}
