using Identity.Server.Connect;
using Microsoft.Extensions.Logging.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Tests.Connect;

/// <summary>
/// EndpointMatcher stands in for OpenIddict's InferEndpointType and must answer as it does: both are asked about the
/// same requests, under several base addresses (a path base too), for relative endpoints like the server's, ones
/// with a trailing slash or dot segments, and an absolute one on another host.
/// </summary>
public sealed class EndpointMatcherTests
{
    static OpenIddictServerOptions Options()
    {
        var options = new OpenIddictServerOptions();
        options.TokenEndpointUris.Add(new Uri("connect/token", UriKind.Relative));
        options.TokenEndpointUris.Add(new Uri("https://login.example.com/oauth/token", UriKind.Absolute));
        options.AuthorizationEndpointUris.Add(new Uri("connect/authorize/", UriKind.Relative));
        options.ConfigurationEndpointUris.Add(new Uri(".well-known/openid-configuration", UriKind.Relative));
        options.PushedAuthorizationEndpointUris.Add(new Uri("connect/par", UriKind.Relative));
        options.UserInfoEndpointUris.Add(new Uri("../userinfo", UriKind.Relative));
        options.RevocationEndpointUris.Add(new Uri("a/./b", UriKind.Relative));
        options.IntrospectionEndpointUris.Add(new Uri("connect/introspect", UriKind.Relative));
        return options;
    }

    static readonly string[] Paths =
    [
        "connect/token", "CONNECT/Token", "connect/token/", "connect/token//", "connect/tokens", "connect/toke", "connect", "",
        "connect/authorize", "connect/authorize/", "connect/authorize//", ".well-known/openid-configuration", "connect/par/",
        "userinfo", "../userinfo", "a/b", "a/./b", "a/b/", "connect/introspect?x=1", "connect/token%2F", "connect%2Ftoken",
    ];

    static readonly string[] Absolute =
    [
        "https://login.example.com/oauth/token", "https://LOGIN.example.com:443/oauth/token/", "http://login.example.com/oauth/token",
        "https://login.example.com:8443/oauth/token", "https://login.example.com/oauth/tokens",
    ];

    [Theory]
    [InlineData("https://id.example.com/")]
    [InlineData("https://id.example.com/tenant/")]
    [InlineData("http://localhost:8080/")]
    [InlineData("https://login.example.com/")]
    [InlineData("https://login.example.com/oauth/")]
    public async Task AnswersAsOpenIddictDoes(string baseAddress)
    {
        var options = Options();
        var matcher = new EndpointMatcher();
        var baseUri = new Uri(baseAddress);
        var requests = Paths.Select(p => new Uri(baseUri, p)).Concat(Absolute.Select(a => new Uri(a))).ToList();
        var found = new List<OpenIddictServerEndpointType>();

        foreach (var request in requests)
        {
            var ours = Context(options, baseUri, request);
            var theirs = Context(options, baseUri, request);
            await matcher.HandleAsync(ours);
            await new OpenIddictServerHandlers.InferEndpointType().HandleAsync(theirs);

            Assert.True(theirs.EndpointType == ours.EndpointType, $"{request} under {baseUri}: OpenIddict {theirs.EndpointType}, ours {ours.EndpointType}");
            found.Add(ours.EndpointType);
        }
        // The cases are not all misses: under every base some find the token endpoint, some find none.
        Assert.Contains(OpenIddictServerEndpointType.Token, found);
        Assert.Contains(OpenIddictServerEndpointType.Unknown, found);
    }

    static ProcessRequestContext Context(OpenIddictServerOptions options, Uri baseUri, Uri request) =>
        new(new OpenIddictServerTransaction { Options = options, Logger = NullLogger.Instance })
        {
            BaseUri = baseUri, RequestUri = request,
        };
}
