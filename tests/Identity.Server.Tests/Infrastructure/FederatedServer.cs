using System.Net;
using System.Net.Sockets;
using Identity.Server.Data;
using Identity.Server.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// Two servers of this project on real ports: <see cref="Upstream"/> plays the external OpenID provider, this one
/// federates to it as the generic OpenID Connect provider "upstream". The server answers at localhost and the
/// provider at 127.0.0.1, so that a browser keeps their cookies apart as it would for two sites.
/// </summary>
public sealed class FederatedServer : ServerFactory
{
    public const string Provider = "upstream";
    public const string ProviderDisplayName = "Upstream IdP";
    public const string UpstreamClientId = "federated-server";
    public const string UpstreamClientSecret = "federated-server-secret-0123456789abcdef";
    /// <summary>A first-party app's page that receives the provider's code (the auth API's external sign-in).</summary>
    public const string AppRedirect = "http://localhost:5173/oauth-callback";

    public ServerFactory Upstream { get; }
    public Uri Address { get; }
    public Uri UpstreamAddress { get; }

    public FederatedServer() : this(FreePort(), FreePort()) { }

    FederatedServer(int port, int upstreamPort) : base(DatabaseSettings.Sqlite(), overrides: Settings(upstreamPort))
    {
        Address = new Uri($"http://localhost:{port}/");
        UpstreamAddress = new Uri($"http://127.0.0.1:{upstreamPort}/");
        Upstream = new ServerFactory(DatabaseSettings.Sqlite(), overrides: UpstreamSettings(Address));
        Upstream.UseKestrel(options => options.Listen(IPAddress.Loopback, upstreamPort));
        Upstream.StartServer();
        UseKestrel(options => options.ListenLocalhost(port));
        StartServer();
    }

    /// <summary>An account at the provider, with or without a verified email, and <see cref="ServerTests{T}.Password"/>.</summary>
    public async Task CreateProviderUserAsync(string email, bool verified)
    {
        await using var scope = Upstream.Services.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var user = new User { Email = email, Name = "Federated User", EmailConfirmed = verified };
        var created = await Accounts.CreateAsync(services.GetRequiredService<UserManager<User>>(), services.GetRequiredService<IdentityDbContext>(),
            services.GetRequiredService<Identity.Server.Events.SecurityEvents>(), user, ServerTests<FederatedServer>.Password, []);
        if (!created.Succeeded)
            throw new InvalidOperationException(string.Join(" ", created.Errors.Select(e => e.Description)));
    }

    static IEnumerable<KeyValuePair<string, string?>> Settings(int upstreamPort) => Pairs(
        "Identity:ExternalProviders:Oidc:0:Name", Provider,
        "Identity:ExternalProviders:Oidc:0:DisplayName", ProviderDisplayName,
        "Identity:ExternalProviders:Oidc:0:Authority", $"http://127.0.0.1:{upstreamPort}/",
        "Identity:ExternalProviders:Oidc:0:ClientId", UpstreamClientId,
        "Identity:ExternalProviders:Oidc:0:ClientSecret", UpstreamClientSecret,
        "Identity:ExternalProviders:RedirectUris:0", AppRedirect);

    /// <summary>The provider knows this server as a confidential client, with the app's callback as a second redirect URI.</summary>
    static IEnumerable<KeyValuePair<string, string?>> UpstreamSettings(Uri server) => Pairs(
        "Identity:Clients:5:ClientId", UpstreamClientId,
        "Identity:Clients:5:ClientSecret", UpstreamClientSecret,
        "Identity:Clients:5:GrantTypes:0", "authorization_code",
        "Identity:Clients:5:RedirectUris:0", new Uri(server, "signin/" + Provider).ToString(),
        "Identity:Clients:5:RedirectUris:1", AppRedirect,
        "Identity:Clients:5:Scopes:0", "openid",
        "Identity:Clients:5:Scopes:1", "profile",
        "Identity:Clients:5:Scopes:2", "email",
        "Identity:Clients:5:ConsentType", "implicit");

    static IEnumerable<KeyValuePair<string, string?>> Pairs(params string[] settings)
    {
        for (var i = 0; i < settings.Length; i += 2)
            yield return new(settings[i], settings[i + 1]);
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    bool disposed;

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && !disposed)
        {
            disposed = true;
            Upstream.Dispose();
        }
    }
}
