using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// One real server per test class: its own database, its own key folder, and the clients every suite uses.
/// A server made with a given database and key folder (to restart on them) leaves them to its caller.
/// </summary>
public class ServerFactory(DatabaseSettings database, string? keyFolder = null, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    : WebApplicationFactory<Program>
{
    public const string AdminEmail = "admin@example.test";
    public const string AdminPassword = "admin passphrase for the tests";

    public const string FirstPartyOrigin = "https://first-party.example.test";
    public const string Spa = "spa";                        // public, code + PKCE, explicit consent
    public const string SpaRedirect = "http://localhost:5173/callback";
    public const string SpaLogoutRedirect = "http://localhost:5173/";
    public const string Web = "web";                        // confidential, code + refresh + password, implicit consent
    public const string WebSecret = "web-secret-0123456789abcdef0123456789abcdef";
    public const string WebRedirect = "https://web.example.test/signin-oidc";
    public const string Service = "service";                // confidential, client credentials only
    public const string ServiceSecret = "service-secret-0123456789abcdef0123456789";
    public const string DownstreamScope = "orders";
    public const string DownstreamAudience = "orders-api";     // also the client id the orders API introspects with
    public const string DownstreamSecret = "orders-api-secret-0123456789abcdef012345";
    public const string Provisioner = "provisioner";        // confidential, client credentials only, scope scim (SCIM 2.0)
    public const string ProvisionerSecret = "provisioner-secret-0123456789abcdef012345";

    readonly bool ownsResources = keyFolder is null;

    public string KeyFolder { get; } = keyFolder ?? Directory.CreateTempSubdirectory("identity-keys-").FullName;

    public DatabaseSettings Database { get; } = database;

    /// <summary>Where the server's development email sender writes the emails it sends, one file each.</summary>
    public string EmailFolder { get; } = Directory.CreateTempSubdirectory("identity-mail-").FullName;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // Overrides come last, so they win over the defaults.
        foreach (var (key, value) in Settings().Concat(overrides ?? []))
            builder.UseSetting(key, value);
    }

    IEnumerable<KeyValuePair<string, string?>> Settings()
    {
        string?[] settings =
        [
            "Identity:Database:Provider", Database.Provider,
            "ConnectionStrings:Identity", Database.ConnectionString,
            "Identity:Keys:Path", KeyFolder,
            "Identity:Email:DevelopmentFolder", EmailFolder,
            // Suites make many requests from one address; the rate limit tests turn limits on with small numbers.
            "Identity:RateLimiting:Enabled", "false",
            "Identity:Admin:Email", AdminEmail,
            "Identity:Admin:Password", AdminPassword,
            "Identity:Scopes:0:Name", DownstreamScope,
            "Identity:Scopes:0:Resources:0", DownstreamAudience,
            // A first-party app that signs in through /api/v1/auth, without a redirect URI of its own.
            "Identity:Cors:Origins:0", FirstPartyOrigin,

            "Identity:Clients:0:ClientId", Spa,
            "Identity:Clients:0:DisplayName", "Single-page app",
            "Identity:Clients:0:GrantTypes:0", "authorization_code",
            "Identity:Clients:0:GrantTypes:1", "refresh_token",
            "Identity:Clients:0:RedirectUris:0", SpaRedirect,
            "Identity:Clients:0:PostLogoutRedirectUris:0", SpaLogoutRedirect,
            "Identity:Clients:0:Scopes:0", "openid",
            "Identity:Clients:0:Scopes:1", "profile",
            "Identity:Clients:0:Scopes:2", "email",
            "Identity:Clients:0:Scopes:3", "roles",
            "Identity:Clients:0:Scopes:4", "offline_access",
            "Identity:Clients:0:Scopes:5", "identity",
            "Identity:Clients:0:ConsentType", "explicit",

            "Identity:Clients:1:ClientId", Web,
            "Identity:Clients:1:ClientSecret", WebSecret,
            "Identity:Clients:1:GrantTypes:0", "authorization_code",
            "Identity:Clients:1:GrantTypes:1", "refresh_token",
            "Identity:Clients:1:GrantTypes:2", "password",
            "Identity:Clients:1:RedirectUris:0", WebRedirect,
            "Identity:Clients:1:Scopes:0", "openid",
            "Identity:Clients:1:Scopes:1", "profile",
            "Identity:Clients:1:Scopes:2", "email",
            "Identity:Clients:1:Scopes:3", "roles",
            "Identity:Clients:1:Scopes:4", "offline_access",
            "Identity:Clients:1:Scopes:5", "identity",
            "Identity:Clients:1:Scopes:6", DownstreamScope,
            "Identity:Clients:1:ConsentType", "implicit",

            "Identity:Clients:2:ClientId", Service,
            "Identity:Clients:2:ClientSecret", ServiceSecret,
            "Identity:Clients:2:GrantTypes:0", "client_credentials",
            "Identity:Clients:2:Scopes:0", DownstreamScope,
            "Identity:Clients:2:Scopes:1", "identity",

            "Identity:Clients:3:ClientId", DownstreamAudience,
            "Identity:Clients:3:ClientSecret", DownstreamSecret,
            // The orders API may trade the user tokens it receives for this server's API, on their behalf (RFC 8693).
            "Identity:Clients:3:GrantTypes:0", "urn:ietf:params:oauth:grant-type:token-exchange",
            "Identity:Clients:3:Scopes:0", "identity",

            "Identity:Clients:4:ClientId", Provisioner,
            "Identity:Clients:4:ClientSecret", ProvisionerSecret,
            "Identity:Clients:4:GrantTypes:0", "client_credentials",
            "Identity:Clients:4:Scopes:0", "scim",
        ];
        for (var i = 0; i < settings.Length; i += 2)
            yield return new(settings[i]!, settings[i + 1]);
    }

    bool dropped;

    // The factory can be disposed twice (DisposeAsync, then Dispose): drop once.
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && Directory.Exists(EmailFolder))
            Directory.Delete(EmailFolder, recursive: true);
        if (disposing && ownsResources && !dropped)
        {
            dropped = true;
            Database.Drop();
            Directory.Delete(KeyFolder, recursive: true);
        }
    }
}

public sealed class SqliteServer() : ServerFactory(DatabaseSettings.Sqlite());

/// <summary>
/// A server on Kestrel at 127.0.0.1 (a free port): for clients outside the test process (node), and for what only
/// runs behind a real socket (ASP.NET Core's request metrics).
/// </summary>
public class KestrelServer : ServerFactory
{
    public KestrelServer() : this(null) { }

    protected KestrelServer(IEnumerable<KeyValuePair<string, string?>>? overrides) : base(DatabaseSettings.Sqlite(), overrides: overrides)
    {
        UseKestrel(options => options.Listen(System.Net.IPAddress.Loopback, 0));
        StartServer();
    }
}

public sealed class PostgreSqlServer() : ServerFactory(DatabaseSettings.PostgreSql());
