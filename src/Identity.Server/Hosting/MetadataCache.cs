namespace Identity.Server.Hosting;

/// <summary>
/// Discovery and the JWKS change only when the server restarts with other keys or settings, yet every relying
/// party and API fetches them: OpenIddict rebuilds both (exporting every key) per request. They are kept in memory
/// for a minute instead, per host (the issuer follows the request's host when Identity:Issuer is not set).
/// </summary>
public static class MetadataCache
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);

    public static WebApplicationBuilder AddMetadataCache(this WebApplicationBuilder builder)
    {
        builder.Services.AddOutputCache(cache => cache.AddBasePolicy(policy => policy
            .With(context => context.HttpContext.Request.Path.StartsWithSegments("/.well-known"))
            .Expire(Lifetime)));
        return builder;
    }

    /// <summary>Before authentication: OpenIddict answers these inside the authentication middleware.</summary>
    public static WebApplication UseMetadataCache(this WebApplication app)
    {
        app.UseOutputCache();
        return app;
    }
}
