using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Tells OpenIddict which of its endpoints a request is for, in place of its InferEndpointType, with the same answers.
/// OpenIddict sees every request the server handles (the API's and the pages' too), and for each one built an absolute
/// URI from every configured endpoint until one matched: ten for a token request, a twentieth of a client_credentials
/// request's CPU. Here the endpoints' paths are resolved once against the base path (the application's path base,
/// which the server's configuration sets, so it practically never changes) and a request's path is compared as
/// OpenIddict compares it: ignoring case and one trailing slash, on the same scheme, host and port. Endpoints
/// configured as absolute URIs are compared as OpenIddict does.
/// </summary>
public sealed class EndpointMatcher : IOpenIddictServerHandler<ProcessRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
        .UseSingletonHandler<EndpointMatcher>()
        .SetOrder(OpenIddictServerHandlers.InferEndpointType.Descriptor.Order)
        .SetType(OpenIddictServerHandlerType.BuiltIn)
        .Build();

    sealed record Endpoint(OpenIddictServerEndpointType Type, string? Path, Uri? Absolute);

    sealed record Resolved(OpenIddictServerOptions Options, string BasePath, Endpoint[] Endpoints);

    Resolved? resolved;

    public ValueTask HandleAsync(ProcessRequestContext context)
    {
        if (context is not { BaseUri.IsAbsoluteUri: true, RequestUri.IsAbsoluteUri: true })
            throw new InvalidOperationException("The base and request URIs must be absolute for OpenIddict to match an endpoint.");

        var basePath = context.BaseUri.AbsolutePath;
        var current = resolved;
        if (current is null || !ReferenceEquals(current.Options, context.Options) || current.BasePath != basePath)
            resolved = current = new Resolved(context.Options, basePath, Resolve(context.Options, context.BaseUri));

        context.EndpointType = OpenIddictServerEndpointType.Unknown;
        var sameServer = SameServer(context.BaseUri, context.RequestUri);
        var path = context.RequestUri.AbsolutePath;
        foreach (var endpoint in current.Endpoints)
        {
            if (endpoint.Absolute is { } absolute ? SameServer(absolute, context.RequestUri) && SamePath(absolute.AbsolutePath, path)
                : sameServer && SamePath(endpoint.Path!, path))
            {
                context.EndpointType = endpoint.Type;
                context.Logger.LogInformation("The request URI matched a server endpoint: {Endpoint}.", endpoint.Type);
                break;
            }
        }
        return default;
    }

    // OpenIddict's order; a request matching two endpoints gets the first.
    static Endpoint[] Resolve(OpenIddictServerOptions options, Uri baseUri) =>
    [
        .. Of(OpenIddictServerEndpointType.Authorization, options.AuthorizationEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.Configuration, options.ConfigurationEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.DeviceAuthorization, options.DeviceAuthorizationEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.EndSession, options.EndSessionEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.EndUserVerification, options.EndUserVerificationEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.Introspection, options.IntrospectionEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.JsonWebKeySet, options.JsonWebKeySetEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.PushedAuthorization, options.PushedAuthorizationEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.Revocation, options.RevocationEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.Token, options.TokenEndpointUris, baseUri),
        .. Of(OpenIddictServerEndpointType.UserInfo, options.UserInfoEndpointUris, baseUri),
    ];

    // A relative endpoint is the path it resolves to under the base; one that resolves outside it (dot segments)
    // matches nothing, as in OpenIddict.
    static IEnumerable<Endpoint> Of(OpenIddictServerEndpointType type, IEnumerable<Uri> candidates, Uri baseUri) =>
        candidates.Select(candidate => candidate.IsAbsoluteUri ? new Endpoint(type, null, candidate)
                : new Uri(baseUri, candidate) is var uri && baseUri.IsBaseOf(uri) ? new Endpoint(type, uri.AbsolutePath, null)
                : null)
            .OfType<Endpoint>();

    static bool SameServer(Uri left, Uri right) =>
        string.Equals(left.Scheme, right.Scheme, StringComparison.OrdinalIgnoreCase) &&
        string.Equals(left.Host, right.Host, StringComparison.OrdinalIgnoreCase) && left.Port == right.Port;

    static bool SamePath(string endpoint, string request) =>
        string.Equals(endpoint, request, StringComparison.OrdinalIgnoreCase) ||
        (endpoint.Length == request.Length + 1 && endpoint[^1] == '/' && endpoint.StartsWith(request, StringComparison.OrdinalIgnoreCase)) ||
        (request.Length == endpoint.Length + 1 && request[^1] == '/' && request.StartsWith(endpoint, StringComparison.OrdinalIgnoreCase));
}
