using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Hosting;

/// <summary>What an operator sees when starting, restarting and reconfiguring the server.</summary>
public sealed class StartupTests : IDisposable
{
    readonly DatabaseSettings database = DatabaseSettings.Sqlite();
    readonly string keys = Directory.CreateTempSubdirectory("identity-keys-").FullName;

    public void Dispose()
    {
        database.Drop();
        Directory.Delete(keys, recursive: true);
    }

    static KeyValuePair<string, string?> Set(string key, string value) => new(key, value);

    static Task<TokenResponse> ServiceTokenAsync(HttpClient http, string secret = ServerFactory.ServiceSecret) =>
        http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = secret, Scope = ServerFactory.DownstreamScope,
        });

    static async Task<JsonElement> VerifyAuditAsync(ServerFactory server)
    {
        var http = server.CreateClient();
        var login = await http.PostAsJsonAsync("/api/v1/auth/login", new { email = ServerFactory.AdminEmail, password = ServerFactory.AdminPassword });
        var token = (await login.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString();
        using var verify = new HttpRequestMessage(HttpMethod.Get, "/api/v1/audit/verify");
        verify.Headers.Authorization = new("Bearer", token);
        return await (await http.SendAsync(verify)).Content.ReadFromJsonAsync<JsonElement>();
    }

    static async Task<string> AdminTokenAsync(ServerFactory server)
    {
        var login = await server.CreateClient().PostAsJsonAsync("/api/v1/auth/login", new { email = ServerFactory.AdminEmail, password = ServerFactory.AdminPassword });
        return (await login.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    static async Task<HashSet<string>> PublishedKeyIdsAsync(ServerFactory server) =>
        (await server.CreateClient().GetFromJsonAsync<JsonElement>("/.well-known/jwks")).GetProperty("keys").EnumerateArray()
            .Select(k => k.GetProperty("kid").GetString()!.ToUpperInvariant()).ToHashSet();

    static string KeyIdOf(string token) => new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).Kid.ToUpperInvariant();

    static string Thumbprint(string file) =>
        System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(file, null).Thumbprint.ToUpperInvariant();

    /// <summary>
    /// Signing keys roll over without failing a token or a relying party's cached JWKS: `keys rotate` announces the
    /// next key (published, not signing); run again, it makes that key sign and keeps the old one published, so tokens
    /// signed before still validate, here and against the JWKS.
    /// </summary>
    [Fact]
    public async Task SigningKeys_RollOver_WithoutInvalidatingIssuedTokens()
    {
        string original, issuedBefore;
        await using (var first = new ServerFactory(database, keys))
        {
            issuedBefore = await AdminTokenAsync(first);
            original = KeyIdOf(issuedBefore);
        }

        Identity.Server.Hosting.SigningKeys.Rotate(keys, TextWriter.Null);
        var announced = Thumbprint(Path.Combine(keys, "published", "next-signing-rsa.pfx"));
        await using (var second = new ServerFactory(database, keys))
        {
            Assert.Equal(original, KeyIdOf(await AdminTokenAsync(second)));
            Assert.Superset(new HashSet<string> { original, announced }, await PublishedKeyIdsAsync(second));
        }

        Identity.Server.Hosting.SigningKeys.Rotate(keys, TextWriter.Null);
        await using var third = new ServerFactory(database, keys);
        var issuedAfter = await AdminTokenAsync(third);
        var published = await PublishedKeyIdsAsync(third);

        Assert.Equal(announced, KeyIdOf(issuedAfter));
        Assert.Equal(announced, Thumbprint(Path.Combine(keys, "signing-rsa.pfx")));
        Assert.Contains(original, published);
        Assert.Contains(Thumbprint(Path.Combine(keys, "published", "next-signing-rsa.pfx")), published);
        var http = third.CreateClient();
        foreach (var token in new[] { issuedBefore, issuedAfter })
        {
            using var me = new HttpRequestMessage(HttpMethod.Get, "/api/v1/auth/me");
            me.Headers.Authorization = new("Bearer", token);
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(me)).StatusCode);
        }
    }

    static Task<TokenResponse> AdminPasswordGrantAsync(WebApplicationFactory<Program> server, string scope = "openid offline_access") =>
        server.CreateClient().RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = scope,
        });

    /// <summary>Runs the hourly session pruning job once, at the server's time.</summary>
    static async Task PruneSessionsAsync(WebApplicationFactory<Program> server)
    {
        using var scope = server.Services.CreateScope();
        await ActivatorUtilities.CreateInstance<Identity.Server.Sessions.PruneSessions>(scope.ServiceProvider).Execute(null!, CancellationToken.None);
    }

    /// <summary>Whether the session an access token belongs to is still recorded.</summary>
    static async Task<bool> SessionIsRecordedAsync(WebApplicationFactory<Program> server, string accessToken)
    {
        var session = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(accessToken)
            .GetClaim(OpenIddict.Abstractions.OpenIddictConstants.Claims.Private.AuthorizationId).Value;
        using var scope = server.Services.CreateScope();
        return await scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>().Sessions.AnyAsync(s => s.AuthorizationId == session);
    }

    static Task<TokenResponse> RefreshAsync(WebApplicationFactory<Program> server, string refreshToken) =>
        server.CreateClient().RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, RefreshToken = refreshToken,
        });

    static string PrivateTokenKeyId(byte[] key) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(key[..32]).AsSpan(0, 8));

    /// <summary>
    /// The secret keys roll over with the signing keys (`keys rotate`): after two runs, a refresh token and a Data
    /// Protection payload (the key ring is encrypted with the encryption certificate) from before still work, and new
    /// refresh tokens are sealed with the new private-token key. Nobody is signed out by a rotation.
    /// </summary>
    [Fact]
    public async Task SecretKeys_RollOver_WithoutSigningAnyoneOut()
    {
        string refresh, sealedBefore;
        await using (var first = new ServerFactory(database, keys))
        {
            var login = await AdminPasswordGrantAsync(first);
            Assert.False(login.IsError, login.Error);
            refresh = login.RefreshToken!;
            sealedBefore = first.Services.GetRequiredService<IDataProtectionProvider>()
                .CreateProtector("rollover").Protect("still readable");
        }
        var (keyBefore, certificateBefore) = (File.ReadAllBytes(Path.Combine(keys, "private-tokens.key")), Thumbprint(Path.Combine(keys, "encryption-rsa.pfx")));

        Identity.Server.Hosting.SigningKeys.Rotate(keys, TextWriter.Null);
        await using (var second = new ServerFactory(database, keys))
        {
            var refreshed = await RefreshAsync(second, refresh);
            Assert.False(refreshed.IsError, refreshed.Error);
            refresh = refreshed.RefreshToken!;
        }
        Identity.Server.Hosting.SigningKeys.Rotate(keys, TextWriter.Null);
        await using var third = new ServerFactory(database, keys);
        var afterRotation = await RefreshAsync(third, refresh);
        var unsealed = third.Services.GetRequiredService<IDataProtectionProvider>()
            .CreateProtector("rollover").Unprotect(sealedBefore);
        var keyAfter = File.ReadAllBytes(Path.Combine(keys, "private-tokens.key"));

        Assert.Equal(PrivateTokenKeyId(keyBefore), new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(refresh).Kid);
        Assert.False(afterRotation.IsError, afterRotation.Error);
        Assert.False(keyBefore.SequenceEqual(keyAfter));
        Assert.Equal(PrivateTokenKeyId(keyAfter), new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(afterRotation.RefreshToken!).Kid);
        Assert.NotEqual(certificateBefore, Thumbprint(Path.Combine(keys, "encryption-rsa.pfx")));
        Assert.Equal("still readable", unsealed);
        Assert.Single(Directory.GetFiles(Path.Combine(keys, "accepted"), "retired-private-tokens-*.key"));
        Assert.True(File.Exists(Path.Combine(keys, "accepted", "next-private-tokens.key")));
    }

    /// <summary>
    /// Clients stored before pushed authorization requests existed may push after an upgrade, as new ones may: a
    /// library that pushes whenever discovery offers it would otherwise be refused.
    /// </summary>
    [Fact]
    public async Task Upgrade_StoredCodeFlowClients_MayPushAuthorizationRequests()
    {
        const string clientId = "stored-before-par";
        await using (var first = new ServerFactory(database, keys))
        {
            using var scope = first.Services.CreateScope();
            var applications = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictApplicationManager>();
            var descriptor = Identity.Server.Clients.ClientRegistration.Describe(new Identity.Server.Clients.ClientOptions
            {
                ClientId = clientId, GrantTypes = ["authorization_code"], RedirectUris = ["https://old.example.test/cb"], Scopes = ["openid"],
            });
            descriptor.Permissions.Remove(OpenIddict.Abstractions.OpenIddictConstants.Permissions.Endpoints.PushedAuthorization);
            await applications.CreateAsync(descriptor);
        }

        await using var second = new ServerFactory(database, keys);
        var pushed = await second.CreateClient().PostAsync("/connect/par", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = clientId, ["response_type"] = "code", ["redirect_uri"] = "https://old.example.test/cb", ["scope"] = "openid",
            ["code_challenge"] = Pkce.New().Challenge, ["code_challenge_method"] = "S256",
        }));

        Assert.Equal(HttpStatusCode.Created, pushed.StatusCode);
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", (await pushed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("request_uri").GetString());
    }

    /// <summary>
    /// A back-channel logout notice waits in the database: one whose first delivery failed just before the server
    /// stopped is delivered by the next start, not lost with the process.
    /// </summary>
    [Fact]
    public async Task BackchannelLogout_NoticeOutlivesARestart()
    {
        await using var receiver = new WebhookReceiver("not-a-webhook-not-a-webhook-not-a-webhook") { FailFirst = 1 };
        KeyValuePair<string, string?>[] client =
        [
            Set("Identity:Clients:9:ClientId", "restart-app"), Set("Identity:Clients:9:ClientSecret", "restart-app-secret-0123456789abcdef"),
            Set("Identity:Clients:9:GrantTypes:0", "password"), Set("Identity:Clients:9:GrantTypes:1", "refresh_token"), Set("Identity:Clients:9:Scopes:0", "identity"), Set("Identity:Clients:9:Scopes:1", "offline_access"),
            Set("Identity:Clients:9:BackchannelLogoutUri", receiver.Url),
        ];
        Task<TokenResponse> SignInAsync(HttpClient http) => http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = "restart-app", ClientSecret = "restart-app-secret-0123456789abcdef", Scope = "identity offline_access",
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword,
        });

        await using (var first = new ServerFactory(database, keys, client))
        {
            var http = first.CreateClient();
            var current = (await SignInAsync(http)).AccessToken;
            var other = await SignInAsync(http);
            Assert.False(other.IsError, other.Error + other.ErrorDescription);
            using var endOthers = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/sessions");
            endOthers.Headers.Authorization = new("Bearer", current);
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(endOthers)).StatusCode);
            Assert.Single(await receiver.WaitForAsync(1, TimeSpan.FromSeconds(15)));
            // Stopped once the failed attempt is on record: the notice waits for its next attempt in the database.
            using var scope = first.Services.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
            for (var waited = 0; waited < 100 && !await db.LogoutNotices.AnyAsync(n => n.Attempts == 1); waited++)
                await Task.Delay(100);
            Assert.Equal(1, (await db.LogoutNotices.SingleAsync()).Attempts);
        }
        await using var second = new ServerFactory(database, keys, client);
        _ = second.Services;   // starts it
        var received = await receiver.WaitForAsync(2, TimeSpan.FromSeconds(20));

        Assert.Equal([500, 200], received.Select(r => r.AnsweredWith));
        Assert.All(received, r => Assert.StartsWith("logout_token=ey", r.Body));
    }

    /// <summary>
    /// The audit chain is keyed by a file beside the certificates: whoever can write the database but lacks the key
    /// cannot make a changed log verify. A server given a new key (first keyed start, or a lost key) links the stored
    /// log again under it; one whose key was swapped behind its back finds the whole chain broken.
    /// </summary>
    [Fact]
    public async Task AuditChain_IsKeyedOutsideTheDatabase()
    {
        await using (var first = new ServerFactory(database, keys))
            Assert.True((await VerifyAuditAsync(first)).GetProperty("valid").GetBoolean());
        var keyFile = Path.Combine(keys, "audit-chain.key");
        Assert.Equal(32, new FileInfo(keyFile).Length);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));

        var newKeys = Directory.CreateTempSubdirectory("identity-keys-").FullName;
        try
        {
            await using (var relinked = new ServerFactory(database, newKeys))
                Assert.True((await VerifyAuditAsync(relinked)).GetProperty("valid").GetBoolean());

            await File.WriteAllBytesAsync(Path.Combine(newKeys, "audit-chain.key"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
            await using var swapped = new ServerFactory(database, newKeys);
            var broken = await VerifyAuditAsync(swapped);
            Assert.False(broken.GetProperty("valid").GetBoolean());
            Assert.Equal(1, broken.GetProperty("first_broken_sequence").GetInt64());
        }
        finally
        {
            Directory.Delete(newKeys, recursive: true);
        }
    }

    [Fact]
    public async Task Keys_GeneratedOnFirstRun_AreReusedAfterRestart()
    {
        string firstJwks, token, refreshToken;
        await using (var first = new ServerFactory(database, keys))
        {
            var http = first.CreateClient();
            firstJwks = await http.GetStringAsync("/.well-known/jwks");
            token = (await ServiceTokenAsync(http)).AccessToken!;
            refreshToken = (await http.RequestPasswordTokenAsync(new PasswordTokenRequest
            {
                Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
                UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = "offline_access",
            })).RefreshToken!;
        }
        foreach (var file in new[] { "signing-rsa.pfx", "signing-ecdsa.pfx", "encryption-rsa.pfx", "private-tokens.key" })
        {
            Assert.True(File.Exists(Path.Combine(keys, file)), file);
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(keys, file)));
        }

        await using var second = new ServerFactory(database, keys);
        var again = second.CreateClient();

        Assert.Equal(Kids(firstJwks), Kids(await again.GetStringAsync("/.well-known/jwks")));
        var introspection = await again.IntrospectTokenAsync(new TokenIntrospectionRequest
        {
            Address = "/connect/introspect", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Token = token,
        });
        Assert.True(introspection.IsActive, introspection.Raw);
        var refreshed = await again.RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, RefreshToken = refreshToken,
        });
        Assert.False(refreshed.IsError, refreshed.Raw);
    }

    /// <summary>
    /// The SQLite settings belong to each native connection, and are applied once per native connection rather than
    /// at every open: connections reused from the pool, by any DbContext, must still have them.
    /// </summary>
    [Fact]
    public async Task Sqlite_EveryConnectionKeepsWalNormalSyncAndBusyTimeout()
    {
        await using var server = new ServerFactory(database, keys);
        _ = server.CreateClient();

        // Three contexts open at once hold three native connections; the second round takes them from the pool.
        for (var round = 0; round < 2; round++)
        {
            var scopes = Enumerable.Range(0, 3).Select(_ => server.Services.CreateScope()).ToList();
            var contexts = scopes.Select(scope => scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>()).ToList();
            foreach (var db in contexts)
                await db.Database.OpenConnectionAsync();
            foreach (var db in contexts)
            {
                Assert.Equal("wal", await PragmaAsync(db, "journal_mode"));
                Assert.Equal("1", await PragmaAsync(db, "synchronous"));
                Assert.Equal("10000", await PragmaAsync(db, "busy_timeout"));
            }
            foreach (var db in contexts)
                await db.Database.CloseConnectionAsync();
            scopes.ForEach(scope => scope.Dispose());
        }

        static async Task<string?> PragmaAsync(DbContext db, string name)
        {
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.CommandText = "PRAGMA " + name;
            return (await command.ExecuteScalarAsync())?.ToString();
        }
    }

    [Fact]
    public async Task Es256_WhenChosen_SignsTokensAndRs256StaysPublished()
    {
        await using var server = new ServerFactory(database, keys, [Set("Identity:Keys:SigningAlgorithm", "ES256")]);
        var http = server.CreateClient();

        var token = await ServiceTokenAsync(http);

        var header = JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(token.AccessToken!.Split('.')[0])).RootElement;
        Assert.Equal("ES256", header.GetProperty("alg").GetString());
        var jwks = await http.GetStringAsync("/.well-known/jwks");
        Assert.Contains("\"RS256\"", jwks);
        Assert.Contains(header.GetProperty("kid").GetString()!, Kids(jwks));
        var validation = await new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().ValidateTokenAsync(token.AccessToken, new()
        {
            ValidIssuer = http.BaseAddress!.ToString(),
            ValidAudience = ServerFactory.DownstreamAudience,
            IssuerSigningKeys = new Microsoft.IdentityModel.Tokens.JsonWebKeySet(jwks).GetSigningKeys(),
        });
        Assert.True(validation.IsValid, validation.Exception?.Message);
    }

    [Fact]
    public async Task Seeding_IsIdempotentAndAppliesAChangedClient()
    {
        await using (var first = new ServerFactory(database, keys))
            Assert.False((await ServiceTokenAsync(first.CreateClient())).IsError);

        const string rotated = "rotated-secret-0123456789abcdef0123456789";
        await using var second = new ServerFactory(database, keys, [
            Set("Identity:Clients:2:ClientSecret", rotated),
            Set("Identity:Clients:0:RedirectUris:0", "http://localhost:5173/new-callback"),
        ]);
        var http = second.CreateClient(new() { AllowAutoRedirect = false });

        Assert.Equal(HttpStatusCode.Unauthorized, (await ServiceTokenAsync(http)).HttpStatusCode);
        Assert.False((await ServiceTokenAsync(http, rotated)).IsError);
        var oldRedirect = await http.GetAsync($"/connect/authorize?client_id=spa&response_type=code&scope=openid&redirect_uri={Uri.EscapeDataString(ServerFactory.SpaRedirect)}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256");
        var newRedirect = await http.GetAsync($"/connect/authorize?client_id=spa&response_type=code&scope=openid&redirect_uri={Uri.EscapeDataString("http://localhost:5173/new-callback")}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256");
        Assert.Equal(HttpStatusCode.BadRequest, oldRedirect.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, newRedirect.StatusCode);
        Assert.Contains("/Account/Login", newRedirect.Headers.Location!.ToString());

        // The admin from configuration exists once, with the admin role, after two starts.
        var admin = await http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = "roles",
        });
        Assert.False(admin.IsError, admin.Error);
        var payload = JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(admin.AccessToken!.Split('.')[1])).RootElement;
        Assert.Contains("admin", payload.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }

    [Theory]
    [InlineData("Identity:Clients:0:GrantTypes:2", "implicit", "grant type 'implicit'")]
    [InlineData("Identity:Clients:0:RedirectUris:0", "/relative/callback", "'/relative/callback' is not an absolute URI")]
    [InlineData("Identity:Clients:0:ConsentType", "sometimes", "ConsentType 'sometimes'")]
    [InlineData("Identity:Keys:SigningAlgorithm", "HS256", "RS256 or ES256")]
    [InlineData("Identity:ExternalProviders:Google:ClientId", "only-an-id", "Identity:ExternalProviders:Google:ClientSecret is required")]
    [InlineData("Identity:ExternalProviders:Oidc:0:Name", "corp", "Identity:ExternalProviders:Oidc:0:Authority must be")]
    [InlineData("Identity:ExternalProviders:Oidc:0:Name", "Not A Name", "Identity:ExternalProviders:Oidc:0:Name is required")]
    [InlineData("Identity:ExternalProviders:RedirectUris:0", "/relative", "'/relative' must be an absolute URL")]
    [InlineData("Identity:Clients:0:AccessTokenLifetime", "00:00:10", "10 seconds is not between 60 and 86400")]
    [InlineData("Identity:Branding:LogoUrl", "http://cdn.example.test/logo.png", "Identity:Branding:LogoUrl must be an https URL")]
    [InlineData("Identity:Branding:LogoUrl", "javascript:alert(1)", "Identity:Branding:LogoUrl must be an https URL")]
    [InlineData("Identity:Branding:AccentColor", "red;}body{display:none", "Identity:Branding:AccentColor must be a colour")]
    [InlineData("Identity:UserAttributes:0:Name", "Department", "Identity:UserAttributes:0:Name must be 1 to 64 lower-case letters")]
    [InlineData("Identity:UserAttributes:0:Name", "email", "Identity:UserAttributes:0:Name 'email' is a claim this server already issues")]
    public void Misconfiguration_FailsAtStartWithAClearMessage(string key, string value, string message)
    {
        using var server = new ServerFactory(database, keys, [Set(key, value)]);

        var error = Assert.ThrowsAny<Exception>(() => server.CreateClient());

        Assert.Contains(message, error.ToString());
    }

    [Theory]
    [InlineData("Scope", "hr", "Identity:UserAttributes:0:Scope 'hr' is not a scope of this server")]
    [InlineData("Scim", "manager", "Identity:UserAttributes:0:Scim 'manager' is not a single-valued SCIM attribute")]
    [InlineData("Scim", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:title", "is not a single-valued SCIM attribute")]
    public void AUserAttribute_WithAnUnknownScopeOrScimAttribute_FailsAtStart(string setting, string value, string message)
    {
        using var server = new ServerFactory(database, keys, [Set("Identity:UserAttributes:0:Name", "department"), Set($"Identity:UserAttributes:0:{setting}", value)]);

        var error = Assert.ThrowsAny<Exception>(() => server.CreateClient());

        Assert.Contains(message, error.ToString());
    }

    [Fact]
    public void RequiringVerifiedEmails_WithoutAnEmailSender_FailsAtStart()
    {
        using var server = new ServerFactory(database, keys, [Set("Identity:SignIn:RequireVerifiedEmail", "true"), Set("Identity:Email:DevelopmentFolder", "")]);

        var error = Assert.ThrowsAny<Exception>(() => server.CreateClient());

        Assert.Contains("Identity:SignIn:RequireVerifiedEmail needs an email sender", error.ToString());
    }

    [Fact]
    public async Task Health_LiveAndReadyAnswer_MetricsAreOffUnlessEnabled()
    {
        await using var server = new ServerFactory(database, keys);
        var http = server.CreateClient();

        var live = await http.GetAsync("/health");
        var ready = await http.GetAsync("/health/ready");

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/metrics")).StatusCode);
    }

    [Fact]
    public async Task Health_ReadyFailsWhenTheDatabaseIsGone_LiveStaysUp()
    {
        var postgres = DatabaseSettings.PostgreSql();
        await using var server = new ServerFactory(postgres, keys);
        var http = server.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);

        postgres.Drop();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task Tokens_LifetimesAndEncryptionAreConfigurable()
    {
        await using var server = new ServerFactory(database, keys, [
            Set("Identity:Tokens:AccessTokenLifetime", "00:10:00"),
            Set("Identity:Tokens:EncryptAccessTokens", "true"),
        ]);
        var http = server.CreateClient();

        var token = await http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = "identity",
        });

        Assert.InRange(token.ExpiresIn, 599, 600);
        Assert.Equal(5, token.AccessToken!.Split('.').Length); // JWE: readable by this server only
        using var me = new HttpRequestMessage(HttpMethod.Get, "/api/v1/auth/me");
        me.SetBearerToken(token.AccessToken);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(me)).StatusCode);
    }

    [Fact]
    public async Task Production_RefusesPlainHttpFromTheNetwork_AllowsLoopback()
    {
        await using var server = new ServerFactory(database, keys).WithWebHostBuilder(b => b.UseEnvironment("Production"));
        _ = server.CreateClient();

        var remote = await server.Server.SendAsync(http => Discovery(http, IPAddress.Parse("203.0.113.7")));
        var loopback = await server.Server.SendAsync(http => Discovery(http, IPAddress.Loopback));
        var https = await server.Server.SendAsync(http =>
        {
            Discovery(http, IPAddress.Parse("203.0.113.7"));
            (http.Request.Scheme, http.Request.Host) = ("https", new HostString("id.example.com"));
        });
        // Plain HTTP from a TLS proxy on this host: the cookies still go out Secure.
        var loginPage = await server.Server.SendAsync(http =>
        {
            (http.Request.Method, http.Request.Path, http.Connection.RemoteIpAddress) = ("GET", "/Account/Login", IPAddress.Loopback);
        });

        Assert.Equal(StatusCodes.Status400BadRequest, remote.Response.StatusCode);
        Assert.Equal(StatusCodes.Status200OK, loopback.Response.StatusCode);
        Assert.Equal(StatusCodes.Status200OK, https.Response.StatusCode);
        Assert.StartsWith("max-age=", https.Response.Headers.StrictTransportSecurity.ToString());
        Assert.NotEqual(0, loginPage.Response.Headers.SetCookie.Count);
        Assert.All(loginPage.Response.Headers.SetCookie, cookie => Assert.Contains("secure", cookie!, StringComparison.OrdinalIgnoreCase));

        static void Discovery(HttpContext http, IPAddress remote)
        {
            http.Request.Method = "GET";
            http.Request.Path = "/.well-known/openid-configuration";
            http.Connection.RemoteIpAddress = remote;
        }
    }

    /// <summary>
    /// Reset links expire on their own clock (Identity:Email:ResetLinkLifetime, an hour by default) and verification
    /// links on theirs (two days): here the reset's is cut to a second, with the real clock, since Identity's token
    /// provider does not read TimeProvider.
    /// </summary>
    [Fact]
    public async Task EmailLinks_ExpireEachOnItsOwnLifetime()
    {
        await using var server = new ServerFactory(database, keys, [Set("Identity:Email:ResetLinkLifetime", "00:00:01")]);
        var http = server.CreateClient();
        var email = $"links-{Guid.NewGuid():N}@example.test";
        await http.PostAsJsonAsync("/api/v1/auth/register", new { email, password = "a long enough passphrase" });
        await http.PostAsJsonAsync("/api/v1/auth/password/forgot", new { email });
        var links = Directory.GetFiles(server.EmailFolder).Select(File.ReadAllText).Where(m => m.StartsWith($"To: {email}\n", StringComparison.Ordinal))
            .SelectMany(m => System.Text.RegularExpressions.Regex.Matches(m, @"https?://\S+")).Select(m => new Uri(m.Value)).ToList();
        var reset = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(links.Single(l => l.AbsolutePath == "/Account/ResetPassword").Query);
        var verify = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(links.Single(l => l.AbsolutePath == "/Account/VerifyEmail").Query);

        await Task.Delay(TimeSpan.FromSeconds(2.5));
        var lateReset = await http.PostAsJsonAsync("/api/v1/auth/password/reset",
            new { user_id = reset["user"].ToString(), token = reset["token"].ToString(), new_password = "a brand new passphrase" });
        var lateVerify = await http.PostAsJsonAsync("/api/v1/auth/verify-email", new { user_id = verify["user"].ToString(), token = verify["token"].ToString() });

        Assert.Equal(HttpStatusCode.BadRequest, lateReset.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, lateVerify.StatusCode);
    }

    [Fact]
    public async Task Api_RefusesExpiredTokens()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys).At(clock);
        var http = server.CreateClient();
        var token = await http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = "identity",
        });
        using var fresh = new HttpRequestMessage(HttpMethod.Get, "/api/v1/auth/me");
        fresh.SetBearerToken(token.AccessToken!);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(fresh)).StatusCode);

        clock.Shift = TimeSpan.FromHours(1) + TimeSpan.FromSeconds(5);

        using var expired = new HttpRequestMessage(HttpMethod.Get, "/api/v1/auth/me");
        expired.SetBearerToken(token.AccessToken!);
        var answer = await http.SendAsync(expired);
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Contains("UNAUTHORIZED", await answer.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClientCredentialsTokens_SelfContainedByDefault_StoredAndRevocableWhenConfigured(bool store)
    {
        await using var server = new ServerFactory(database, keys, [Set("Identity:Tokens:StoreClientCredentialsTokens", store.ToString())]);
        var http = server.CreateClient();
        async Task<int> StoredTokensAsync()
        {
            using var scope = server.Services.CreateScope();
            return await scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>().Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>().CountAsync();
        }
        var before = await StoredTokensAsync();

        var token = (await ServiceTokenAsync(http)).AccessToken!;
        var revoked = await http.RevokeTokenAsync(new TokenRevocationRequest
        {
            Address = "/connect/revoke", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Token = token,
        });
        var introspection = await http.IntrospectTokenAsync(new TokenIntrospectionRequest
        {
            Address = "/connect/introspect", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Token = token,
        });

        Assert.Equal(before + (store ? 1 : 0), await StoredTokensAsync());
        Assert.Equal(store, !revoked.IsError);
        Assert.Equal(!store, introspection.IsActive);
    }

    [Fact]
    public async Task AuditRetention_PrunesOldEntriesOnRecord_AndTheChainStillVerifies()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys, [Set("Identity:Audit:RetentionDays", "1")]).At(clock);
        var http = server.CreateClient();
        await http.PostAsJsonAsync("/api/v1/auth/register", new { email = $"old-{Guid.NewGuid():N}@example.test", password = "a long enough passphrase" });
        clock.Shift = TimeSpan.FromDays(2);
        var login = await http.PostAsJsonAsync("/api/v1/auth/login", new { email = ServerFactory.AdminEmail, password = ServerFactory.AdminPassword });
        http.DefaultRequestHeaders.Authorization = new("Bearer", JsonDocument.Parse(await login.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString());

        using (var scope = server.Services.CreateScope())
            await ActivatorUtilities.CreateInstance<Identity.Server.Audit.PruneAuditLog>(scope.ServiceProvider).Execute(null!, CancellationToken.None);
        var verify = JsonDocument.Parse(await http.GetStringAsync("/api/v1/audit/verify")).RootElement;
        var log = JsonDocument.Parse(await http.GetStringAsync("/api/v1/audit?limit=100")).RootElement.GetProperty("entries").EnumerateArray().ToList();

        Assert.True(verify.GetProperty("valid").GetBoolean(), verify.ToString());
        Assert.DoesNotContain(log, e => e.GetProperty("action").GetString() == "user.created");
        var pruned = Assert.Single(log, e => e.GetProperty("action").GetString() == "audit.pruned");
        Assert.True(pruned.GetProperty("details").GetProperty("count").GetInt32() > 0);

        // Deleting history by hand, without a retention record, is caught.
        using (var scope = server.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
            var oldest = await db.AuditEntries.MinAsync(a => a.Sequence);
            await db.AuditEntries.Where(a => a.Sequence == oldest).ExecuteDeleteAsync();
        }
        var broken = JsonDocument.Parse(await http.GetStringAsync("/api/v1/audit/verify")).RootElement;
        Assert.False(broken.GetProperty("valid").GetBoolean());
    }

    [Fact]
    public async Task PruneSessions_ASessionWhoseTokensAllExpired_IsRemovedWithSessionExpired()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys,
            [Set("Identity:Tokens:AccessTokenLifetime", "00:00:01"), Set("Identity:Tokens:RefreshTokenLifetime", "00:00:01"),
             Set("Identity:Tokens:IdentityTokenLifetime", "00:00:01")])
            .At(clock);
        var http = server.CreateClient();
        var email = $"expiring-{Guid.NewGuid():N}@example.test";
        var registered = await http.PostAsJsonAsync("/api/v1/auth/register", new { email, password = "a long enough passphrase" });
        var userId = JsonDocument.Parse(await registered.Content.ReadAsStringAsync()).RootElement.GetProperty("user").GetProperty("id").GetString();
        async Task<int> SessionsAsync()
        {
            using var scope = server.Services.CreateScope();
            return await scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>().Sessions.CountAsync(s => s.UserId == userId);
        }
        Assert.Equal(1, await SessionsAsync());

        // The tokens expire after a second; pruning takes what is a day past that.
        await Task.Delay(TimeSpan.FromSeconds(2));
        clock.Shift = TimeSpan.FromDays(2);
        await PruneSessionsAsync(server);

        Assert.Equal(0, await SessionsAsync());
        using (var scope = server.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
            var expired = Assert.Single(await db.AuditEntries.Where(a => a.Action == "session.expired" && a.SubjectId == userId).ToListAsync());
            Assert.Contains("\"reason\":\"timed_out\"", expired.Details);
        }
    }

    [Fact]
    public async Task PruneSessions_KeepsASignInWhileItsRefreshTokenLives_ThenRemovesIt()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys).At(clock);
        var signedIn = await AdminPasswordGrantAsync(server, "offline_access");

        // Two days on, past pruning's one-day grace: the sign-in has no token rows, but its refresh token lives 14 days.
        clock.Shift = TimeSpan.FromDays(2);
        await PruneSessionsAsync(server);
        Assert.True(await SessionIsRecordedAsync(server, signedIn.AccessToken!));
        var refreshed = await RefreshAsync(server, signedIn.RefreshToken!);
        Assert.False(refreshed.IsError, refreshed.Error);

        // Left alone past its refresh token's lifetime, it is gone.
        clock.Shift = TimeSpan.FromDays(2 + 15);
        await PruneSessionsAsync(server);
        Assert.False(await SessionIsRecordedAsync(server, signedIn.AccessToken!));
    }

    [Fact]
    public async Task ALoginWithoutRememberMe_LeavesTheSessionList_WhenItsRefreshTokenLapses_AndPruningEndsIt()
    {
        var clock = new ShiftedClock();
        // Identity tokens have rows, which OpenIddict prunes by the real clock: they expire in a second here.
        await using var server = new ServerFactory(database, keys, [Set("Identity:Tokens:IdentityTokenLifetime", "00:00:01")]).At(clock);
        var http = server.CreateClient();
        var email = $"lapsing-{Guid.NewGuid():N}@example.test";
        const string password = "a long enough passphrase";
        (await http.PostAsJsonAsync("/api/v1/auth/register", new { email, password })).EnsureSuccessStatusCode();
        async Task<JsonElement> LoginAsync(bool rememberMe) =>
            JsonDocument.Parse(await (await http.PostAsJsonAsync("/api/v1/auth/login", new { email, password, remember_me = rememberMe }))
                .Content.ReadAsStringAsync()).RootElement;
        var remembered = await LoginAsync(rememberMe: true);
        var brief = await LoginAsync(rememberMe: false);
        string SessionOf(JsonElement login) => new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(login.GetProperty("access_token").GetString())
            .GetClaim(OpenIddict.Abstractions.OpenIddictConstants.Claims.Private.AuthorizationId).Value;
        async Task<HttpResponseMessage> RefreshAsync(JsonElement login) =>
            await http.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = login.GetProperty("refresh_token").GetString() });
        async Task<Dictionary<string, JsonElement>> ListedAsync(string accessToken)
        {
            using var list = new HttpRequestMessage(HttpMethod.Get, "/api/v1/sessions");
            list.Headers.Authorization = new("Bearer", accessToken);
            var answer = await http.SendAsync(list);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            return JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.GetProperty("sessions").EnumerateArray()
                .ToDictionary(s => s.GetProperty("id").GetString()!);
        }
        // Each says when it lapses unless its refresh token is used: a day, or fourteen with remember me.
        var before = await ListedAsync(remembered.GetProperty("access_token").GetString()!);
        TimeSpan Lasts(JsonElement session) => session.GetProperty("expires_at").GetDateTimeOffset() - session.GetProperty("last_used_at").GetDateTimeOffset();
        Assert.Equal(TimeSpan.FromDays(1), Lasts(before[SessionOf(brief)]));
        Assert.Equal(TimeSpan.FromDays(14), Lasts(before[SessionOf(remembered)]));

        // Two days on, past the one day a login without remember me lasts, but well within the fourteen of the other.
        await Task.Delay(TimeSpan.FromSeconds(2));
        clock.Shift = TimeSpan.FromDays(2);
        Assert.NotEqual(HttpStatusCode.OK, (await RefreshAsync(brief)).StatusCode);
        var renewed = JsonDocument.Parse(await (await RefreshAsync(remembered)).Content.ReadAsStringAsync()).RootElement;
        var listed = await ListedAsync(renewed.GetProperty("access_token").GetString()!);
        Assert.Contains(SessionOf(remembered), listed.Keys);
        Assert.DoesNotContain(SessionOf(brief), listed.Keys);
        // Its refresh restarted the fourteen days.
        Assert.Equal(TimeSpan.FromDays(14), Lasts(listed[SessionOf(remembered)]));
        Assert.True(listed[SessionOf(remembered)].GetProperty("last_used_at").GetDateTimeOffset() > before[SessionOf(remembered)].GetProperty("last_used_at").GetDateTimeOffset());

        // The hourly pruning ends it as timed out; the remembered one stays.
        await PruneSessionsAsync(server);
        Assert.False(await SessionIsRecordedAsync(server, brief.GetProperty("access_token").GetString()!));
        Assert.True(await SessionIsRecordedAsync(server, remembered.GetProperty("access_token").GetString()!));
        using var scope = server.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
        var briefSession = SessionOf(brief);
        var expired = Assert.Single(await db.AuditEntries.Where(a => a.Action == "session.expired" && a.Details!.Contains(briefSession)).ToListAsync());
        Assert.Contains("\"reason\":\"timed_out\"", expired.Details);
    }

    [Fact]
    public async Task PruneSessions_AnEndedSignInWithARecentTokenRow_IsLeftForALaterRun_NotAFailure()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys).At(clock);
        var http = server.CreateClient();
        var signedIn = await AdminPasswordGrantAsync(server);
        // Two days on the sign-in refreshes (its new identity token has a row), then ends.
        clock.Shift = TimeSpan.FromDays(2);
        var refreshed = await RefreshAsync(server, signedIn.RefreshToken!);
        Assert.False(refreshed.IsError, refreshed.Error);
        Assert.False((await http.RevokeTokenAsync(new TokenRevocationRequest
        {
            Address = "/connect/revoke", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, Token = refreshed.RefreshToken!,
        })).IsError);

        // The ended session is older than a day, its identity token's row is not, and the row still points at it.
        await PruneSessionsAsync(server);
        Assert.True(await SessionIsRecordedAsync(server, refreshed.AccessToken!));
        // Once the row is a day old, both go.
        clock.Shift = TimeSpan.FromDays(4);
        await PruneSessionsAsync(server);
        Assert.False(await SessionIsRecordedAsync(server, refreshed.AccessToken!));
    }

    [Fact]
    public async Task Clients_AreReadFromMemory_AndAChangeMadeElsewhereCountsAfterMaxAge()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys).At(clock);
        var http = server.CreateClient();
        Assert.False((await ServiceTokenAsync(http)).IsError);

        // Another server instance (or an operator) takes client_credentials away from the client, around this one.
        using (var scope = server.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>()
                .Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>()
                .Where(a => a.ClientId == ServerFactory.Service)
                .ExecuteUpdateAsync(a => a.SetProperty(x => x.Permissions, "[\"ept:token\"]"));

        Assert.False((await ServiceTokenAsync(http)).IsError);
        clock.Shift = Identity.Server.Connect.ClientSnapshots.MaxAge + TimeSpan.FromSeconds(1);
        var refused = await ServiceTokenAsync(http);
        Assert.Equal("unauthorized_client", refused.Error);
    }

    [Fact]
    public async Task MachineTokens_RememberedByTheApis_AreStillRefusedOnceExpiredOrAltered()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys).At(clock);
        var http = server.CreateClient();
        var token = await http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = "identity",
        });
        async Task<HttpStatusCode> DecideAsync(string accessToken)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/authorize")
            {
                Content = JsonContent.Create(new
                {
                    principal = new { type = "User", id = "nobody@example.test" }, action = new { type = "Action", id = "read" },
                    resource = new { type = "Document", id = "doc-1" }, context = new { },
                }),
            };
            request.SetBearerToken(accessToken);
            return (await http.SendAsync(request)).StatusCode;
        }
        var parts = token.AccessToken!.Split('.');
        var altered = $"{parts[0]}.{parts[1]}.{parts[2][..^4]}AAAA";

        Assert.Equal(HttpStatusCode.OK, await DecideAsync(token.AccessToken!));
        Assert.Equal(HttpStatusCode.OK, await DecideAsync(token.AccessToken!));
        Assert.Equal(HttpStatusCode.Unauthorized, await DecideAsync(altered));
        clock.Shift = TimeSpan.FromSeconds(token.ExpiresIn + 5);
        Assert.Equal(HttpStatusCode.Unauthorized, await DecideAsync(token.AccessToken!));
    }

    [Fact]
    public async Task Sessions_AreMarkedUsedAtEachRefresh()
    {
        var clock = new ShiftedClock();
        await using var server = new ServerFactory(database, keys).At(clock);
        var http = server.CreateClient();
        var email = $"refresher-{Guid.NewGuid():N}@example.test";
        var signedIn = await http.PostAsJsonAsync("/api/v1/auth/register", new { email, password = "a long enough passphrase" });
        var refreshToken = JsonDocument.Parse(await signedIn.Content.ReadAsStringAsync()).RootElement.GetProperty("refresh_token").GetString();
        async Task<DateTimeOffset> RefreshAndReadLastUseAsync()
        {
            var refreshed = await http.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refreshToken });
            var body = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync()).RootElement;
            refreshToken = body.GetProperty("refresh_token").GetString();
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/sessions");
            request.SetBearerToken(body.GetProperty("access_token").GetString()!);
            var sessions = JsonDocument.Parse(await (await http.SendAsync(request)).Content.ReadAsStringAsync()).RootElement;
            return sessions.GetProperty("sessions")[0].GetProperty("last_used_at").GetDateTimeOffset();
        }

        var first = await RefreshAndReadLastUseAsync();
        clock.Shift = TimeSpan.FromSeconds(20);
        var soonAfter = await RefreshAndReadLastUseAsync();
        clock.Shift = TimeSpan.FromMinutes(5);
        var later = await RefreshAndReadLastUseAsync();

        Assert.InRange(soonAfter - first, TimeSpan.FromSeconds(19), TimeSpan.FromSeconds(30));
        Assert.InRange(later - soonAfter, TimeSpan.FromSeconds(279), TimeSpan.FromSeconds(290));
    }

    /// <summary>
    /// A browser signed in before a password reset must not go on authorizing new tokens for long: its cookie is checked
    /// against the account's security stamp every minute.
    /// </summary>
    [Fact]
    public async Task BrowserSession_EndsWithinAMinuteOfAPasswordReset()
    {
        await using var server = new ServerFactory(database, keys);
        var clock = new ShiftedClock();
        var clocked = server.At(clock);
        var http = clocked.CreateClient();
        var email = $"reset-{Guid.NewGuid():N}@example.test";
        var admin = (await (await http.PostAsJsonAsync("/api/v1/auth/login", new { email = ServerFactory.AdminEmail, password = ServerFactory.AdminPassword }))
            .Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString();
        http.DefaultRequestHeaders.Authorization = new("Bearer", admin);
        var created = await (await http.PostAsJsonAsync("/api/v1/users", new { email, password = "a long enough passphrase", email_verified = true }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var browser = new Browser(clocked);
        await browser.LoginAsync(await browser.OpenAsync("/Account/Login"), email, "a long enough passphrase");
        Assert.Contains("You are signed in", (await browser.OpenAsync("/")).Body);

        var reset = await http.PutAsJsonAsync($"/api/v1/users/{created.GetProperty("user").GetProperty("id").GetString()}", new { password = "a new long enough passphrase" });
        clock.Shift = TimeSpan.FromSeconds(61);

        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.Contains("You are not signed in", (await browser.OpenAsync("/")).Body);
    }

    /// <summary>
    /// The minute's check rebuilds the session cookie from the database; how and when the user signed in exist only in
    /// the cookie, and must survive it, or later identity tokens lose their amr and their auth_time moves.
    /// </summary>
    [Fact]
    public async Task BrowserSession_RebuiltAfterAMinute_KeepsHowAndWhenTheUserSignedIn()
    {
        await using var server = new ServerFactory(database, keys);
        var clock = new ShiftedClock();
        var clocked = server.At(clock);
        var client = new Duende.IdentityModel.OidcClient.OidcClient(new Duende.IdentityModel.OidcClient.OidcClientOptions
        {
            Authority = clocked.CreateClient().BaseAddress!.ToString(), ClientId = ServerFactory.Spa, RedirectUri = ServerFactory.SpaRedirect,
            Scope = "openid", HttpClientFactory = _ => clocked.CreateClient(), DisablePushedAuthorization = true,
        });
        var browser = new Browser(clocked);
        var signedInAt = DateTimeOffset.UtcNow;
        var first = await client.PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(first.StartUrl), ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        await browser.SubmitAsync(consent, button: "consent", value: "accept");

        clock.Shift = TimeSpan.FromMinutes(2);
        var second = await client.PrepareLoginAsync();
        var page = await browser.OpenAsync(second.StartUrl);
        var result = await client.ProcessResponseAsync(page.LeftTo!.ToString(), second);

        Assert.False(result.IsError, result.Error);
        var identity = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(result.IdentityToken);
        Assert.Equal(["pwd"], identity.GetPayloadValue<string[]>("amr"));
        Assert.InRange(DateTimeOffset.FromUnixTimeSeconds(identity.GetPayloadValue<long>("auth_time")), signedInAt.AddSeconds(-2), signedInAt.AddSeconds(30));
    }

    [Fact]
    public async Task MfaSetup_NeedsASignInOfTheLast15Minutes_NotJustAToken()
    {
        await using var server = new ServerFactory(database, keys);
        var clock = new ShiftedClock();
        var http = server.At(clock).CreateClient();
        async Task<string> LoginAsync() => (await (await http.PostAsJsonAsync("/api/v1/auth/login",
            new { email = ServerFactory.AdminEmail, password = ServerFactory.AdminPassword })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
        async Task<HttpResponseMessage> SetupAsync(string token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/mfa/setup") { Content = JsonContent.Create(new { method = "totp" }) };
            request.Headers.Authorization = new("Bearer", token);
            return await http.SendAsync(request);
        }
        var token = await LoginAsync();
        Assert.True(new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).TryGetPayloadValue<long>("auth_time", out _));

        clock.Shift = TimeSpan.FromMinutes(16);
        var stale = await SetupAsync(token);
        var fresh = await SetupAsync(await LoginAsync());

        Assert.Equal(HttpStatusCode.Forbidden, stale.StatusCode);
        Assert.Equal("reauthentication_required", (await stale.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
    }

    sealed class ShiftedClock : TimeProvider
    {
        public TimeSpan Shift { get; set; }
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Shift;
    }

    static string[] Kids(string jwks) =>
        JsonDocument.Parse(jwks).RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).Order().ToArray();
}

static class ClockedServer
{
    /// <summary>The server with <paramref name="clock"/> as its time, to move past lifetimes without waiting.</summary>
    public static WebApplicationFactory<Program> At(this ServerFactory server, TimeProvider clock) =>
        server.WithWebHostBuilder(b => b.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(clock)));
}
