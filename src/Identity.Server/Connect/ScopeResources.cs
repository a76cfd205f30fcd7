using Identity.Server.Clients;

namespace Identity.Server.Connect;

/// <summary>
/// The scopes this server knows and the audiences they grant, from configuration (the built-in identity scope and
/// Identity:Scopes). Held in memory: scopes change only with configuration, and looking them up in the database for
/// every token was a fifth of a client_credentials request's cost.
/// </summary>
public sealed class ScopeResources
{
    readonly Dictionary<string, string[]> resources;

    public ScopeResources(IEnumerable<ScopeOptions> configured)
    {
        resources = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            [ServerApi.Scope] = [ServerApi.Audience],
            [Scim.ScimApi.Scope] = [ServerApi.Audience],
            [Hosting.ServerMetrics.Scope] = [ServerApi.Audience],
        };
        foreach (var scope in configured)
            resources[scope.Name] = [.. scope.Resources];
    }

    /// <summary>Every API scope: the ones besides OpenID Connect's own that clients may ask for.</summary>
    public IEnumerable<string> Names => resources.Keys;

    public IEnumerable<string> For(IEnumerable<string> scopes) =>
        scopes.SelectMany(s => resources.TryGetValue(s, out var audiences) ? audiences : []).Distinct(StringComparer.Ordinal);
}
