using System.Net;
using System.Text.Json;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Clients;

/// <summary>
/// private_key_jwt with the keys at the client's jwks_uri: fetched when the client is registered, then again only when
/// an assertion names a key the server has not seen (the client rotated) or the set is old, never per sign-in.
/// The client's key server is a real HTTP server on loopback, allowed here because tests run in Development.
/// </summary>
public sealed class JwksUriTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    static string Jwks(params PrivateKeyJwtTests<SqliteServer>.ClientKey[] keys) => JsonSerializer.Serialize(new { keys = keys.Select(k => k.Public) });

    static PrivateKeyJwtTests<SqliteServer>.ClientKey Key(string kid) => PrivateKeyJwtTests<SqliteServer>.NewRsaKey(kid);

    Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    Task<TokenResponse> TokenAsync(string clientId, PrivateKeyJwtTests<SqliteServer>.ClientKey key) =>
        Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, Scope = ServerFactory.DownstreamScope, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer, Value = PrivateKeyJwtTests<SqliteServer>.Assertion(Issuer, clientId, key),
            },
        });

    Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> CreateAsync(string admin, string clientId, object keys) =>
        ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new Dictionary<string, object>(
            JsonSerializer.Deserialize<Dictionary<string, object>>(JsonSerializer.Serialize(keys))!)
        {
            ["client_id"] = clientId, ["grant_types"] = new[] { "client_credentials" }, ["scopes"] = new[] { ServerFactory.DownstreamScope },
        });

    /// <summary>A private_key_jwt client whose keys are at <paramref name="uri"/>, registered by the admin; both returned.</summary>
    async Task<(string Admin, string ClientId)> RegisterAsync(string uri)
    {
        var admin = await AdminAsync();
        var clientId = $"remote-keys-{Guid.NewGuid():N}";
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(admin, clientId, new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = uri })).Status);
        return (admin, clientId);
    }

    [Fact]
    public async Task JwksUri_KeysAreFetchedAtRegistration_AndARotatedInKeyWhenFirstUsed_NotPerSignIn()
    {
        await using var site = new KeySetServer();
        var (current, next, stranger) = (Key("2026-11"), Key("2026-12"), Key("2026-12"));
        var uri = site.Publish(Jwks(current));
        var admin = await AdminAsync();
        var clientId = $"remote-keys-{Guid.NewGuid():N}";

        var created = await CreateAsync(admin, clientId, new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = uri });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        var view = created.Body.GetProperty("client");
        Assert.Equal(uri, view.GetProperty("jwks_uri").GetString());
        Assert.Equal("private_key_jwt", view.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal("2026-11", view.GetProperty("jwks").GetProperty("keys")[0].GetProperty("kid").GetString());
        Assert.Equal(1, site.RequestsTo(uri));

        var first = await TokenAsync(clientId, current);
        var second = await TokenAsync(clientId, current);
        Assert.False(first.IsError, first.Raw);
        Assert.False(second.IsError, second.Raw);
        Assert.Equal(1, site.RequestsTo(uri));

        // The client rotates at its own site, withdrawing the old key: the first assertion with the new kid is checked
        // against the set fetched again; the old key no longer works, and made-up or forged assertions fetch nothing.
        site.Publish(Jwks(next), url: uri);
        var rotated = await TokenAsync(clientId, next);
        var withdrawn = await TokenAsync(clientId, current);
        var forged = await TokenAsync(clientId, stranger);
        Assert.False(rotated.IsError, rotated.Raw);
        Assert.Equal("invalid_client", withdrawn.TryGet("error"));
        Assert.Equal("invalid_client", forged.TryGet("error"));
        Assert.Equal(2, site.RequestsTo(uri));
    }

    /// <summary>A burst of sign-ins with a key just rotated in: they wait for one fetch, and all get in.</summary>
    [Fact]
    public async Task JwksUri_ABurstOfSignInsWithANewKey_CostsTheSiteOneFetch_AndAllSucceed()
    {
        await using var site = new KeySetServer();
        var (current, next) = (Key("2027-01"), Key("2027-02"));
        var uri = site.Publish(Jwks(current));
        var (_, clientId) = await RegisterAsync(uri);

        site.Publish(Jwks(current, next), url: uri);
        var burst = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => TokenAsync(clientId, next)));

        Assert.All(burst, token => Assert.False(token.IsError, token.Raw));
        Assert.Equal(2, site.RequestsTo(uri));
    }

    [Fact]
    public async Task JwksUri_WhenTheClientsSiteFails_TheLastKeysKnownKeepWorking()
    {
        await using var site = new KeySetServer();
        var key = Key("steady");
        var uri = site.Publish(Jwks(key));
        var (_, clientId) = await RegisterAsync(uri);

        site.Publish("{\"error\":\"down\"}", status: 503, url: uri);
        var unknownKey = await TokenAsync(clientId, Key("unseen"));
        var knownKey = await TokenAsync(clientId, key);

        Assert.Equal("invalid_client", unknownKey.TryGet("error"));
        Assert.Equal(2, site.RequestsTo(uri));
        Assert.False(knownKey.IsError, knownKey.Raw);
    }

    [Fact]
    public async Task JwksUri_ThatServesNoUsableKeySet_IsRefusedAtRegistration_NamingTheField()
    {
        await using var site = new KeySetServer();
        var key = Key("k");
        var withPrivate = JsonSerializer.Serialize(new { keys = new[] { new Dictionary<string, string>(key.Public) { ["d"] = "AQAB" } } });
        object[] bodies =
        [
            new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = site.Publish("", status: 404) },
            new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = site.Publish("this is not json") },
            new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = site.Publish(withPrivate) },
            new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = site.Publish(new string(' ', 70_000) + Jwks(key)) },
            new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = "ftp://keys.example.test/jwks.json" },
            new { token_endpoint_auth_method = "client_secret_basic", jwks_uri = site.Publish(Jwks(key)) },
            new { token_endpoint_auth_method = "private_key_jwt", jwks_uri = site.Publish(Jwks(key)), jwks = new { keys = new[] { key.Public } } },
        ];
        var admin = await AdminAsync();

        foreach (var body in bodies)
        {
            var clientId = $"refused-{Guid.NewGuid():N}";
            var answer = await CreateAsync(admin, clientId, body);
            Assert.True(answer.Status == HttpStatusCode.BadRequest, $"{JsonSerializer.Serialize(body)}: {answer.Status} {answer.Body}");
            Assert.Equal("jwks_uri", answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
            Assert.Equal(HttpStatusCode.NotFound, (await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin)).Status);
        }
    }

    /// <summary>
    /// A configured client's keys are fetched at every start. When its site is down at a start, a client the database
    /// already has keeps the keys of the last start; a new one is left out, and the server starts all the same.
    /// </summary>
    [Fact]
    public async Task JwksUri_AtAStartWhileTheSiteIsDown_AKnownClientKeepsItsKeys_ANewOneIsLeftOut()
    {
        await using var site = new KeySetServer();
        var key = Key("home");
        var uri = site.Publish(Jwks(key));
        // Given a key folder, a server leaves its database and keys behind when it stops, for the next one.
        var (database, keys) = (DatabaseSettings.Sqlite(), Directory.CreateTempSubdirectory("identity-keys-").FullName);
        KeyValuePair<string, string?>[] Configured(int n, string clientId) =>
        [
            new($"Identity:Clients:{n}:ClientId", clientId), new($"Identity:Clients:{n}:JwksUri", uri),
            new($"Identity:Clients:{n}:GrantTypes:0", "client_credentials"), new($"Identity:Clients:{n}:Scopes:0", ServerFactory.DownstreamScope),
        ];
        await using (var first = new ServerFactory(database, keys, Configured(5, "known-client")))
            first.CreateClient().Dispose();

        site.Publish("down for maintenance", status: 503, url: uri);
        await using var second = new ServerFactory(database, keys, [.. Configured(5, "known-client"), .. Configured(6, "new-client")]);
        using var http = second.CreateClient();
        var token = await http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = "known-client", Scope = ServerFactory.DownstreamScope, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer,
                Value = PrivateKeyJwtTests<SqliteServer>.Assertion(http.BaseAddress!.ToString(), "known-client", key),
            },
        });
        using var scope = second.Services.CreateScope();
        var applications = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictApplicationManager>();

        Assert.False(token.IsError, token.Raw);
        Assert.Null(await applications.FindByClientIdAsync("new-client"));
        // The first start, the second for each client, and the first sign-in, which tries once more (once per 10 s).
        Assert.Equal(4, site.RequestsTo(uri));
        database.Drop();
        Directory.Delete(keys, recursive: true);
    }

    [Fact]
    public async Task JwksUri_ReplacedByKeysInJwks_AndBack()
    {
        await using var site = new KeySetServer();
        var (remote, inline) = (Key("remote"), Key("inline"));
        var uri = site.Publish(Jwks(remote));
        var (admin, clientId) = await RegisterAsync(uri);

        var toInline = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { jwks = new { keys = new[] { inline.Public } } });
        var inlineWorks = await TokenAsync(clientId, inline);
        var remoteRefused = await TokenAsync(clientId, remote);
        var backToUri = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { jwks_uri = uri });
        var remoteWorks = await TokenAsync(clientId, remote);

        Assert.Equal(HttpStatusCode.OK, toInline.Status);
        Assert.False(toInline.Body.GetProperty("client").TryGetProperty("jwks_uri", out var gone) && gone.ValueKind != JsonValueKind.Null);
        Assert.False(inlineWorks.IsError, inlineWorks.Raw);
        Assert.Equal("invalid_client", remoteRefused.TryGet("error"));
        Assert.Equal(HttpStatusCode.OK, backToUri.Status);
        Assert.Equal(uri, backToUri.Body.GetProperty("client").GetProperty("jwks_uri").GetString());
        Assert.False(remoteWorks.IsError, remoteWorks.Raw);
    }
}

/// <summary>A server as in production: it fetches key sets from public addresses, over https, only.</summary>
public sealed class PublicKeySetsServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:ClientKeys:AllowPrivateNetworks", "false")]);

public sealed class PublicKeySetsTests(PublicKeySetsServer server) : ServerTests<PublicKeySetsServer>(server)
{
    [Theory]
    [InlineData("http://127.0.0.1:8080/jwks.json", "loopback")]
    [InlineData("https://localhost/jwks.json", "loopback")]
    [InlineData("https://10.0.0.5/jwks.json", "private")]
    [InlineData("https://169.254.169.254/latest/jwks", "link-local")]
    [InlineData("http://keys.example.test/jwks.json", "https")]
    public async Task JwksUri_InsideTheNetworkOrInTheClear_IsRefused_WithoutAFetch(string uri, string reason)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = $"inside-{Guid.NewGuid():N}", grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope },
            token_endpoint_auth_method = "private_key_jwt", jwks_uri = uri,
        });

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("jwks_uri", answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Contains(reason, answer.Body.GetProperty("error").GetProperty("message").GetString());
    }
}

/// <summary>A client from configuration whose keys are at its jwks_uri (Identity:Clients:N:JwksUri).</summary>
public sealed class ConfiguredJwksUriServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:Clients:5:ClientId", ClientId),
    new("Identity:Clients:5:JwksUri", Uri),
    new("Identity:Clients:5:GrantTypes:0", "client_credentials"),
    new("Identity:Clients:5:Scopes:0", DownstreamScope),
])
{
    public const string ClientId = "keys-at-home";
    public static readonly KeySetServer Site = new();
    public static readonly PrivateKeyJwtTests<ConfiguredJwksUriServer>.ClientKey Key = PrivateKeyJwtTests<ConfiguredJwksUriServer>.NewRsaKey("home-1");
    public static readonly string Uri = Site.Publish(JsonSerializer.Serialize(new { keys = new[] { Key.Public } }));
}

public sealed class ConfiguredJwksUriTests(ConfiguredJwksUriServer server) : ServerTests<ConfiguredJwksUriServer>(server)
{
    [Fact]
    public async Task JwksUri_AClientFromConfiguration_SignsInWithTheKeysAtItsAddress()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ConfiguredJwksUriServer.ClientId, Scope = ServerFactory.DownstreamScope,
            ClientCredentialStyle = ClientCredentialStyle.PostBody,
            ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer,
                Value = PrivateKeyJwtTests<ConfiguredJwksUriServer>.Assertion(Issuer, ConfiguredJwksUriServer.ClientId, ConfiguredJwksUriServer.Key),
            },
        });
        var view = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{ConfiguredJwksUriServer.ClientId}", await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword));

        Assert.False(response.IsError, response.Raw);
        Assert.Equal(ConfiguredJwksUriServer.Uri, view.Body.GetProperty("client").GetProperty("jwks_uri").GetString());
        Assert.True(view.Body.GetProperty("client").GetProperty("configured").GetBoolean());
        Assert.Equal("private_key_jwt", view.Body.GetProperty("client").GetProperty("token_endpoint_auth_method").GetString());
    }
}
