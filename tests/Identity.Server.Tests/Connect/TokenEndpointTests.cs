using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;

namespace Identity.Server.Tests.Connect;

public sealed class SqliteTokenEndpointTests(SqliteServer server) : TokenEndpointTests<SqliteServer>(server);
public sealed class PostgreSqlTokenEndpointTests(PostgreSqlServer server) : TokenEndpointTests<PostgreSqlServer>(server);

/// <summary>/connect/token, /connect/introspect and /connect/revoke through Duende.IdentityModel, as a client uses them.</summary>
public abstract class TokenEndpointTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    [Fact]
    public async Task Discovery_AdvertisesFlowsEndpointsAndOnlyS256()
    {
        var discovery = await Http.GetDiscoveryDocumentAsync();

        Assert.False(discovery.IsError, discovery.Error);
        Assert.Equal(Issuer, discovery.Issuer);
        Assert.Equal(["S256"], discovery.CodeChallengeMethodsSupported);
        Assert.Equivalent(new[] { "client_secret_basic", "client_secret_post", "private_key_jwt" }, discovery.TokenEndpointAuthenticationMethodsSupported, strict: true);
        Assert.Equivalent(new[] { "authorization_code", "refresh_token", "client_credentials", "password" }, discovery.GrantTypesSupported);
        Assert.EndsWith("/connect/userinfo", discovery.UserInfoEndpoint);
        Assert.EndsWith("/connect/endsession", discovery.EndSessionEndpoint);
        Assert.EndsWith("/connect/introspect", discovery.IntrospectionEndpoint);
        Assert.EndsWith("/connect/revoke", discovery.RevocationEndpoint);
        Assert.Contains(discovery.KeySet!.Keys, k => k.Alg == "RS256");
        Assert.Contains(discovery.KeySet!.Keys, k => k.Alg == "ES256");
    }

    [Fact]
    public async Task Metadata_IsServedFromMemoryAfterTheFirstRequest()
    {
        foreach (var path in new[] { "/.well-known/jwks", "/.well-known/openid-configuration" })
        {
            var first = await Http.GetAsync(path);
            var second = await Http.GetAsync(path);

            Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
            Assert.True(second.Headers.Age.HasValue, $"{path} was not served from the cache");
        }
    }

    [Fact]
    public async Task ClientCredentials_IssuesJwtThatThirdPartiesVerifyWithJwks()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = ServerFactory.DownstreamScope,
        });

        Assert.False(response.IsError, response.Error);
        Assert.Equal("Bearer", response.TokenType);
        Assert.InRange(response.ExpiresIn, 3500, 3600);
        Assert.Null(response.RefreshToken);
        var jwt = await ValidateJwtAsync(response.AccessToken!, ServerFactory.DownstreamAudience);
        Assert.Equal("RS256", jwt.Alg);
        Assert.Equal(ServerFactory.Service, jwt.Subject);
        Assert.Equal(ServerFactory.Service, jwt.GetClaim("client_id").Value);
        Assert.Equal(ServerFactory.DownstreamScope, jwt.GetClaim("scope").Value);
    }

    // The endpoints are matched as OpenIddict matches them (EndpointMatcher): any case, one trailing slash; a path
    // below one is not it.
    [Theory]
    [InlineData("/connect/token", HttpStatusCode.OK)]
    [InlineData("/Connect/TOKEN/", HttpStatusCode.OK)]
    [InlineData("/connect/token/more", HttpStatusCode.NotFound)]
    [InlineData("/connect/tokens", HttpStatusCode.NotFound)]
    public async Task TokenEndpoint_IsFoundByPathAsOpenIddictMatchesIt(string path, HttpStatusCode expected)
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = path, ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = ServerFactory.DownstreamScope,
        });

        Assert.Equal(expected, response.HttpStatusCode);
        if (expected == HttpStatusCode.OK)
            Assert.Equal(ServerFactory.Service, (await ValidateJwtAsync(response.AccessToken!, ServerFactory.DownstreamAudience)).Subject);
    }

    // Scopes are checked against the configuration first (KnownScopes), then the database: a scope an earlier
    // configuration left there still works, one named nowhere is refused even where the client may ask for it.
    [Fact]
    public async Task ClientCredentials_AScopeNamedNowhere_IsRefused_OneOnlyInTheDatabaseIsKnown()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string clientId = $"legacy-{suffix}", secret = $"a-secret-long-enough-{suffix}", stored = $"legacy:{suffix}", unknown = $"nowhere:{suffix}";
        using (var scope = Factory.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<IOpenIddictScopeManager>().CreateAsync(new OpenIddictScopeDescriptor { Name = stored });
            await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().CreateAsync(new OpenIddictApplicationDescriptor
            {
                ClientId = clientId, ClientSecret = secret, ClientType = OpenIddictConstants.ClientTypes.Confidential,
                Permissions =
                {
                    OpenIddictConstants.Permissions.Endpoints.Token, OpenIddictConstants.Permissions.GrantTypes.ClientCredentials,
                    OpenIddictConstants.Permissions.Prefixes.Scope + stored, OpenIddictConstants.Permissions.Prefixes.Scope + unknown,
                },
            });
        }
        Task<TokenResponse> TokenAsync(string scope) => Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Scope = scope,
        });

        var known = await TokenAsync(stored);
        var refused = await TokenAsync(unknown);

        Assert.False(known.IsError, known.Error);
        Assert.Equal(stored, new JsonWebToken(known.AccessToken).GetClaim("scope").Value);
        Assert.Equal(HttpStatusCode.BadRequest, refused.HttpStatusCode);
        Assert.Equal("invalid_scope", refused.Error);
    }

    [Fact]
    public async Task Password_IssuesUserTokenWithDocumentedClaims()
    {
        var response = await PasswordGrantAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword, $"openid profile email roles identity {ServerFactory.DownstreamScope}");

        Assert.False(response.IsError, response.Error);
        var jwt = await ValidateJwtAsync(response.AccessToken!, "identity");
        Assert.Contains(ServerFactory.DownstreamAudience, jwt.Audiences);
        Assert.Equal(ServerFactory.AdminEmail, jwt.GetClaim("email").Value);
        Assert.Equal("Administrator", jwt.GetClaim("name").Value);
        Assert.Equal(ServerFactory.Web, jwt.GetClaim("client_id").Value);
        Assert.True(jwt.TryGetPayloadValue<long>("iat", out _));
        Assert.True(jwt.TryGetPayloadValue<long>("exp", out _));
        using var payload = JsonDocument.Parse(Base64UrlDecode(jwt.EncodedPayload));
        // roles and amr are JSON arrays, whatever their length.
        // The configured admin is also the first verified member of example.test, so its org_admin.
        Assert.Equal(["admin", "org_admin", "user"], payload.RootElement.GetProperty("roles").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("example.test", jwt.GetClaim("org_domain").Value);
        Assert.False(string.IsNullOrEmpty(jwt.GetClaim("org_id").Value));
        Assert.Equal(["pwd"], payload.RootElement.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.False(payload.RootElement.TryGetProperty("AspNet.Identity.SecurityStamp", out _));
    }

    [Fact]
    public async Task Token_WrongClientSecret_Returns401InvalidClient()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = "not-the-secret", Scope = ServerFactory.DownstreamScope,
        });

        Assert.Equal(HttpStatusCode.Unauthorized, response.HttpStatusCode);
        // IdentityModel reports a 401 as an HTTP error; the body is still the RFC 6749 error.
        Assert.Equal("invalid_client", JsonDocument.Parse(response.Raw!).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task ClientSecret_RememberedOnlyWhileItIsTheStoredOne_WrongSecretsNeverPass()
    {
        var clientId = $"rotating-{Guid.NewGuid():N}";
        const string first = "first-secret-0123456789abcdef0123456789abcdef";
        const string second = "second-secret-0123456789abcdef0123456789abcde";
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId, ClientSecret = first, ClientType = OpenIddictConstants.ClientTypes.Confidential,
            Permissions = { OpenIddictConstants.Permissions.Endpoints.Token, OpenIddictConstants.Permissions.GrantTypes.ClientCredentials },
        };
        using (var scope = Factory.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().CreateAsync(descriptor);
        Task<TokenResponse> TokenAsync(string secret) => Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret,
        });

        Assert.False((await TokenAsync(first)).IsError);
        Assert.False((await TokenAsync(first)).IsError);
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(first + "x")).HttpStatusCode);

        using (var scope = Factory.Services.CreateScope())
        {
            var applications = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
            descriptor.ClientSecret = second;
            await applications.UpdateAsync((await applications.FindByClientIdAsync(clientId))!, descriptor);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(first)).HttpStatusCode);
        Assert.False((await TokenAsync(second)).IsError);
    }

    [Fact]
    public async Task Client_DeletedThroughTheManager_IsRefusedAtOnce()
    {
        var clientId = $"deleted-{Guid.NewGuid():N}";
        const string secret = "deleted-secret-0123456789abcdef0123456789abcdef";
        using (var scope = Factory.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().CreateAsync(new OpenIddictApplicationDescriptor
            {
                ClientId = clientId, ClientSecret = secret, ClientType = OpenIddictConstants.ClientTypes.Confidential,
                Permissions = { OpenIddictConstants.Permissions.Endpoints.Token, OpenIddictConstants.Permissions.GrantTypes.ClientCredentials },
            });
        Task<TokenResponse> TokenAsync() => Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret,
        });
        Assert.False((await TokenAsync()).IsError);

        using (var scope = Factory.Services.CreateScope())
        {
            var applications = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
            await applications.DeleteAsync((await applications.FindByClientIdAsync(clientId))!);
        }

        var refused = await TokenAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, refused.HttpStatusCode);
        Assert.Equal("invalid_client", JsonDocument.Parse(refused.Raw!).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Token_UnsupportedGrant_Returns400()
    {
        var response = await Http.RequestTokenAsync(new TokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, GrantType = "urn:example:made-up",
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.HttpStatusCode);
        Assert.Equal("unsupported_grant_type", response.Error);
    }

    [Fact]
    public async Task Token_GrantNotAllowedForClient_IsRefused()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.HttpStatusCode);
        Assert.Equal("unauthorized_client", response.Error);
    }

    [Theory]
    [InlineData("application/json", "{\"grant_type\":\"client_credentials\"}")]
    [InlineData("application/x-www-form-urlencoded", "")]
    [InlineData("application/x-www-form-urlencoded", "grant_type=password&username=&password=%ZZ")]
    [InlineData("text/plain", "\u0000\u0001garbage")]
    public async Task Token_MalformedBody_Returns400InvalidRequest(string contentType, string body)
    {
        var response = await Http.PostAsync("/connect/token", new StringContent(body, Encoding.UTF8, contentType));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_request", error.RootElement.GetProperty("error").GetString());
    }

    /// <summary>A form ASP.NET Core cannot read (a NUL, over 1,024 fields) is the client's error, answered as OAuth's.</summary>
    [Theory]
    [InlineData("/connect/token")]
    [InlineData("/connect/introspect")]
    [InlineData("/connect/revoke")]
    public async Task Connect_UnreadableForm_Returns400InvalidRequest(string path)
    {
        foreach (var body in new[] { "grant_type=password&username=%00admin&token=%00", string.Join('&', Enumerable.Range(0, 1100).Select(i => $"p{i}=1")) })
        {
            var response = await Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/x-www-form-urlencoded"));

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("invalid_request", error.RootElement.GetProperty("error").GetString());
        }
    }

    /// <summary>RFC 6749 3.2: a repeated parameter is an error, not a token with no scope (nor an identity token for a client).</summary>
    [Theory]
    [InlineData("grant_type=client_credentials&scope=identity&scope=identity", "invalid_request")]
    [InlineData("grant_type=client_credentials&grant_type=client_credentials&scope=identity", "invalid_request")]
    [InlineData("grant_type=client_credentials&scope=openid", "invalid_scope")]
    public async Task ClientCredentials_RepeatedParameterOrOpenIdScope_IsRefused(string body, string error)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ServerFactory.Service}:{ServerFactory.ServiceSecret}")));

        var response = await Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(error, answer.RootElement.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("/connect/token?grant_type=client_credentials")]
    [InlineData("/connect/introspect?token=anything")]
    public async Task TokenAndIntrospection_GetInsteadOfPost_Returns400(string url)
    {
        var response = await Http.GetAsync(url);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_request", error.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Password_UnknownEmailAndWrongPassword_AnswerAlike()
    {
        var email = await CreateUserAsync();

        var wrongPassword = await PasswordGrantAsync(email, "not the password at all");
        var unknownEmail = await PasswordGrantAsync("nobody-" + email, "not the password at all");

        Assert.Equal(HttpStatusCode.BadRequest, wrongPassword.HttpStatusCode);
        Assert.Equal("invalid_grant", wrongPassword.Error);
        Assert.Equal(wrongPassword.HttpStatusCode, unknownEmail.HttpStatusCode);
        Assert.Equal(wrongPassword.Error, unknownEmail.Error);
        Assert.Equal(wrongPassword.ErrorDescription, unknownEmail.ErrorDescription);
    }

    [Fact]
    public async Task Password_FiveFailures_LockTheAccountEvenForTheRightPassword()
    {
        var email = await CreateUserAsync();
        for (var i = 0; i < 5; i++)
            Assert.Equal("invalid_grant", (await PasswordGrantAsync(email, "wrong password " + i)).Error);

        var right = await PasswordGrantAsync(email);

        Assert.Equal("invalid_grant", right.Error);
        Assert.Null(right.AccessToken);
    }

    [Fact]
    public async Task Refresh_RotatesTheRefreshToken()
    {
        var first = await PasswordGrantAsync(await CreateUserAsync());

        var second = await RefreshAsync(first.RefreshToken!);

        Assert.False(second.IsError, second.Error);
        Assert.NotEqual(first.RefreshToken, second.RefreshToken);
        Assert.NotEqual(first.AccessToken, second.AccessToken);
        Assert.Equal(HttpStatusCode.OK, (await CallApiAsync(second.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task RefreshToken_CarriesTheSignInNotTheAccount_WhichEachRenewalReadsAfresh()
    {
        var email = await CreateUserAsync();
        var first = await PasswordGrantAsync(email);

        var sealedInside = await OpenWithSecretKeysAsync(first.RefreshToken!);
        Assert.False(string.IsNullOrEmpty(sealedInside.Subject));
        Assert.True(sealedInside.TryGetClaim(OpenIddictConstants.Claims.AuthenticationMethodReference, out _));
        foreach (var account in new[] { "email", "email_verified", "name", "roles", "org_id", "org_domain", "oi_cl_dstn" })
            Assert.False(sealedInside.TryGetClaim(account, out _), $"the refresh token carries {account}");

        using (var scope = Factory.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Identity.Server.Data.User>>();
            var user = (await users.FindByEmailAsync(email))!;
            user.Name = "Renamed User";
            Assert.True((await users.UpdateAsync(user)).Succeeded);
            Assert.True((await users.AddToRoleAsync(user, "admin")).Succeeded);
        }
        var second = await RefreshAsync(first.RefreshToken!);

        Assert.False(second.IsError, second.Error);
        var access = new JsonWebToken(second.AccessToken!);
        Assert.Equal(email, access.GetClaim("email").Value);
        Assert.Equal("Renamed User", access.GetClaim("name").Value);
        Assert.Contains("admin", access.GetPayloadValue<string[]>("roles"));
        var identity = new JsonWebToken(second.IdentityToken!);
        Assert.Equal(sealedInside.Subject, identity.Subject);
        Assert.Equal("Renamed User", identity.GetClaim("name").Value);
    }

    [Fact]
    public async Task RefreshToken_IsSignedWithTheServersSecretKey_NeverWithAPublishedOne_AndCannotBeAltered()
    {
        var user = await CreateUserAsync();
        var tokens = await PasswordGrantAsync(user);
        var other = await PasswordGrantAsync(await CreateUserAsync());

        var refresh = new JsonWebToken(tokens.RefreshToken!);
        Assert.Equal("HS256", refresh.Alg);
        Assert.Empty(refresh.Enc);
        Assert.Equal(refresh.Id, (await OpenWithSecretKeysAsync(tokens.RefreshToken!)).Id);
        // Access tokens are still for others to check with the published key; the secret key never appears in the JWKS.
        Assert.Equal("RS256", new JsonWebToken(tokens.AccessToken!).Alg);
        var jwks = new JsonWebKeySet(await Http.GetStringAsync("/.well-known/jwks"));
        Assert.DoesNotContain(jwks.Keys, key => key.Kty == "oct" || key.Kid == refresh.Kid);

        // Readable is not writable: the same token made out to another account, or with its signature dropped, is refused.
        var parts = tokens.RefreshToken!.Split('.');
        var payload = System.Text.Json.Nodes.JsonNode.Parse(Base64UrlEncoder.Decode(parts[1]))!;
        payload["sub"] = new JsonWebToken(other.AccessToken!).Subject;
        var altered = $"{parts[0]}.{Base64UrlEncoder.Encode(payload.ToJsonString())}.{parts[2]}";
        var unsigned = $"{Base64UrlEncoder.Encode("""{"alg":"none","typ":"oi_reft+jwt"}""")}.{parts[1]}.";
        foreach (var forged in new[] { altered, unsigned })
            Assert.Equal("invalid_grant", (await RefreshAsync(forged)).Error);
        Assert.False((await RefreshAsync(tokens.RefreshToken!)).IsError);
    }

    [Fact]
    public async Task RefreshToken_WithARowFromAnEarlierVersion_RedeemsOnce_AndItsSuccessorHasNone()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var outer = new JsonWebToken(tokens.RefreshToken!);
        var inner = await OpenWithSecretKeysAsync(tokens.RefreshToken!);
        var session = inner.GetClaim(OpenIddictConstants.Claims.Private.AuthorizationId).Value;
        // The same sign-in as an earlier version left it: its refresh token has a row and names it, the session no record.
        using var scope = Factory.Services.CreateScope();
        var store = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
        var client = await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().FindByClientIdAsync(ServerFactory.Web);
        var row = await store.CreateAsync(new OpenIddictTokenDescriptor
        {
            ApplicationId = await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().GetIdAsync(client!),
            AuthorizationId = session, Subject = inner.Subject, Type = OpenIddictConstants.TokenTypeIdentifiers.RefreshToken,
            Status = OpenIddictConstants.Statuses.Valid, CreationDate = inner.IssuedAt, ExpirationDate = inner.ValidTo,
        });
        var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
        await db.Sessions.Where(s => s.AuthorizationId == session).ExecuteUpdateAsync(s => s.SetProperty(x => x.RefreshTokenId, (string?)null));
        var payload = System.Text.Json.Nodes.JsonNode.Parse(Base64UrlEncoder.Decode(inner.EncodedPayload))!.AsObject();
        payload.Remove(Identity.Server.Connect.SessionRefreshTokens.IdClaim);
        payload[OpenIddictConstants.Claims.Private.TokenId] = await store.GetIdAsync(row);
        var key = await File.ReadAllBytesAsync(Path.Combine(Factory.KeyFolder, "private-tokens.key"));
        var handler = new JsonWebTokenHandler();
        var legacy = handler.EncryptToken(
            handler.CreateToken(payload.ToJsonString(), new SigningCredentials(new SymmetricSecurityKey(key[..32]) { KeyId = inner.Kid }, SecurityAlgorithms.HmacSha256),
                new Dictionary<string, object> { ["typ"] = inner.Typ }),
            new EncryptingCredentials(new SymmetricSecurityKey(key[32..]) { KeyId = outer.Kid }, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512),
            new Dictionary<string, object> { ["typ"] = outer.Typ });

        var successor = await RefreshAsync(legacy);

        Assert.False(successor.IsError, successor.Error);
        var next = await OpenWithSecretKeysAsync(successor.RefreshToken!);
        Assert.False(next.TryGetClaim(OpenIddictConstants.Claims.Private.TokenId, out _));
        Assert.False((await RefreshAsync(successor.RefreshToken!)).IsError);
        Assert.Equal("invalid_grant", (await RefreshAsync(legacy)).Error);
    }

    [Fact]
    public async Task RefreshToken_SealedWithTheCertificatesBeforeTheSecretKeys_StillRedeems()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var inner = await OpenWithSecretKeysAsync(tokens.RefreshToken!);
        // The same token as a server before this change issued it: signed with the RSA certificate, encrypted to the
        // encryption certificate.
        using var signing = X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(Factory.KeyFolder, "signing-rsa.pfx"), null);
        using var encryption = X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(Factory.KeyFolder, "encryption-rsa.pfx"), null);
        var handler = new JsonWebTokenHandler();
        var signed = handler.CreateToken(Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(inner.EncodedPayload)),
            new X509SigningCredentials(signing), new Dictionary<string, object> { ["typ"] = inner.Typ });
        var legacy = handler.EncryptToken(signed,
            new X509EncryptingCredentials(encryption, SecurityAlgorithms.RsaOAEP, SecurityAlgorithms.Aes256CbcHmacSha512),
            new Dictionary<string, object> { ["typ"] = new JsonWebToken(tokens.RefreshToken!).Typ });
        Assert.Equal("RSA-OAEP", new JsonWebToken(legacy).Alg);

        var refreshed = await RefreshAsync(legacy);

        Assert.False(refreshed.IsError, refreshed.Error);
        Assert.Equal(HttpStatusCode.OK, (await CallApiAsync(refreshed.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task Refresh_Reused_RevokesTheWholeChain()
    {
        var first = await PasswordGrantAsync(await CreateUserAsync());
        var second = await RefreshAsync(first.RefreshToken!);
        Assert.False(second.IsError, second.Error);

        var replay = await RefreshAsync(first.RefreshToken!);

        Assert.Equal("invalid_grant", replay.Error);
        Assert.Equal("invalid_grant", (await RefreshAsync(second.RefreshToken!)).Error);
        Assert.False((await IntrospectAsync(second.AccessToken!)).IsActive);
        Assert.False((await IntrospectAsync(first.AccessToken!)).IsActive);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallApiAsync(second.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task Refresh_TokensOfASignIn_HaveNoRows_TheirSessionRecordsTheOneThatMayBeRedeemed()
    {
        var email = await CreateUserAsync();
        var first = await PasswordGrantAsync(email);
        var second = await RefreshAsync(first.RefreshToken!);
        Assert.False(second.IsError, second.Error);

        using var scope = Factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
        var subject = db.Users.Where(u => u.Email == email).Select(u => u.Id).Single();
        Assert.False(db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
            .Any(t => t.Subject == subject && t.Type == OpenIddictConstants.TokenTypeIdentifiers.RefreshToken));
        var current = (await OpenWithSecretKeysAsync(second.RefreshToken!)).GetClaim(Identity.Server.Connect.SessionRefreshTokens.IdClaim).Value;
        var spent = (await OpenWithSecretKeysAsync(first.RefreshToken!)).GetClaim(Identity.Server.Connect.SessionRefreshTokens.IdClaim).Value;
        Assert.NotEqual(spent, current);
        Assert.Equal(current, db.Sessions.Where(s => s.UserId == subject).Select(s => s.RefreshTokenId).Single());
    }

    [Fact]
    public async Task PruneSessions_RunsOnThisDatabase_AndLeavesALiveSignInAlone()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());

        using (var scope = Factory.Services.CreateScope())
            await ActivatorUtilities.CreateInstance<Identity.Server.Sessions.PruneSessions>(scope.ServiceProvider).Execute(null!, CancellationToken.None);

        Assert.False((await RefreshAsync(tokens.RefreshToken!)).IsError);
    }

    [Fact]
    public async Task Refresh_OneTokenTwiceAtOnce_OnlyOneIsAnswered_AndTheSessionEnds()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());

        var answers = await Task.WhenAll(RefreshAsync(tokens.RefreshToken!), RefreshAsync(tokens.RefreshToken!));

        var answered = Assert.Single(answers, a => !a.IsError);
        Assert.Equal("invalid_grant", Assert.Single(answers, a => a.IsError).Error);
        // Either request may have been the thief's: the session ends, the answered one's tokens with it.
        Assert.Equal("invalid_grant", (await RefreshAsync(answered.RefreshToken!)).Error);
        Assert.False((await IntrospectAsync(answered.AccessToken!)).IsActive);
    }

    [Fact]
    public async Task Introspect_RefreshToken_IsActiveOnlyUntilItIsRedeemed_AndLooksWithoutSpending()
    {
        var first = await PasswordGrantAsync(await CreateUserAsync());
        var looked = await IntrospectAsync(first.RefreshToken!);
        var second = await RefreshAsync(first.RefreshToken!);

        Assert.True(looked.IsActive, looked.Error);
        Assert.False(second.IsError, second.Error);
        Assert.False((await IntrospectAsync(first.RefreshToken!)).IsActive);
        // Introspecting the spent token is not a reuse: the session and its current token go on.
        Assert.True((await IntrospectAsync(second.RefreshToken!)).IsActive);
        Assert.False((await RefreshAsync(second.RefreshToken!)).IsError);
    }

    [Fact]
    public async Task Revoke_ASpentRefreshToken_StillEndsItsSignIn()
    {
        var first = await PasswordGrantAsync(await CreateUserAsync());
        var second = await RefreshAsync(first.RefreshToken!);

        // A client that kept an older refresh token signs out with it.
        var revoked = await RevokeAsync(first.RefreshToken!);

        Assert.False(revoked.IsError, revoked.Error);
        Assert.Equal("invalid_grant", (await RefreshAsync(second.RefreshToken!)).Error);
        Assert.False((await IntrospectAsync(second.AccessToken!)).IsActive);
    }

    [Fact]
    public async Task Revoke_AccessToken_IsInactiveAtIntrospectionAndRefusedByApi()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var before = await IntrospectAsync(tokens.AccessToken!);
        Assert.True(before.IsActive, before.Error);
        Assert.Equal(HttpStatusCode.OK, (await CallApiAsync(tokens.AccessToken!)).StatusCode);

        var revoked = await RevokeAsync(tokens.AccessToken!);

        Assert.False(revoked.IsError, revoked.Error);
        Assert.False((await IntrospectAsync(tokens.AccessToken!)).IsActive);
        var api = await CallApiAsync(tokens.AccessToken!);
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        using var error = JsonDocument.Parse(await api.Content.ReadAsStringAsync());
        Assert.Equal("UNAUTHORIZED", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Revoke_AccessToken_EndsItsSession_SoItsRefreshTokenStopsToo()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var other = await PasswordGrantAsync(await CreateUserAsync());

        var revoked = await RevokeAsync(tokens.AccessToken!);

        Assert.False(revoked.IsError, revoked.Error);
        Assert.Equal("invalid_grant", (await RefreshAsync(tokens.RefreshToken!)).Error);
        // Another sign-in is untouched.
        Assert.True((await IntrospectAsync(other.AccessToken!)).IsActive);
        Assert.False((await RefreshAsync(other.RefreshToken!)).IsError);
    }

    [Fact]
    public async Task UserInfo_RefusesTheAccessTokenOfAnEndedSession()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var before = await Http.GetUserInfoAsync(new UserInfoRequest { Address = "/connect/userinfo", Token = tokens.AccessToken! });

        await RevokeAsync(tokens.RefreshToken!);
        var after = await Http.GetUserInfoAsync(new UserInfoRequest { Address = "/connect/userinfo", Token = tokens.AccessToken! });

        Assert.False(before.IsError, before.Error);
        Assert.Equal(HttpStatusCode.Unauthorized, after.HttpStatusCode);
    }

    [Fact]
    public async Task Revoke_ByAnApiAmongTheAudiences_CannotEndTheUsersSession()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync(), scope: $"{ServerFactory.DownstreamScope} offline_access");

        var revoked = await Http.RevokeTokenAsync(new TokenRevocationRequest
        {
            Address = "/connect/revoke", ClientId = ServerFactory.DownstreamAudience, ClientSecret = ServerFactory.DownstreamSecret, Token = tokens.AccessToken!,
        });

        Assert.Equal("unsupported_token_type", revoked.TryGet("error"));
        var introspection = await Http.IntrospectTokenAsync(new TokenIntrospectionRequest
        {
            Address = "/connect/introspect", ClientId = ServerFactory.DownstreamAudience, ClientSecret = ServerFactory.DownstreamSecret, Token = tokens.AccessToken!,
        });
        Assert.True(introspection.IsActive, introspection.Raw);
        Assert.False((await RefreshAsync(tokens.RefreshToken!)).IsError);
    }

    [Fact]
    public async Task Revoke_RefreshToken_CannotBeRedeemed()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());

        await RevokeAsync(tokens.RefreshToken!);

        Assert.Equal("invalid_grant", (await RefreshAsync(tokens.RefreshToken!)).Error);
    }

    [Fact]
    public async Task Introspection_ActiveTokenDescribesItsUser()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var jwt = await ValidateJwtAsync(tokens.AccessToken!, "identity");

        var introspection = await IntrospectAsync(tokens.AccessToken!);

        Assert.True(introspection.IsActive);
        Assert.Equal(jwt.Subject, introspection.Claims.First(c => c.Type == "sub").Value);
        Assert.Equal(ServerFactory.Web, introspection.Claims.First(c => c.Type == "client_id").Value);
        Assert.Equal("identity", introspection.Claims.First(c => c.Type == "aud").Value);
    }

    [Fact]
    public async Task Introspection_ByTheAudiencesApi_SeesUserTokensUntilRevoked()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync(), scope: $"{ServerFactory.DownstreamScope} offline_access");
        var request = new TokenIntrospectionRequest
        {
            Address = "/connect/introspect", ClientId = ServerFactory.DownstreamAudience, ClientSecret = ServerFactory.DownstreamSecret, Token = tokens.AccessToken!,
        };

        var active = await Http.IntrospectTokenAsync(request);
        await RevokeAsync(tokens.RefreshToken!);
        var revoked = await Http.IntrospectTokenAsync(request);

        Assert.True(active.IsActive, active.Raw);
        Assert.Equal(ServerFactory.DownstreamScope, active.Claims.First(c => c.Type == "scope").Value);
        // Revoking the refresh token ended the sign-in, and with it this access token.
        Assert.False(revoked.IsActive);
    }

    [Fact]
    public async Task Api_RefusesTokenMintedForAnotherApi()
    {
        var email = await CreateUserAsync();
        var forOrders = await PasswordGrantAsync(email, scope: ServerFactory.DownstreamScope);
        var forUs = await PasswordGrantAsync(email, scope: "identity");
        await ValidateJwtAsync(forOrders.AccessToken!, ServerFactory.DownstreamAudience);

        Assert.Equal(HttpStatusCode.Unauthorized, (await CallApiAsync(forOrders.AccessToken!)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await CallApiAsync(forUs.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task Api_RefusesMissingAndForgedTokens()
    {
        var tokens = await PasswordGrantAsync(await CreateUserAsync());
        var parts = tokens.AccessToken!.Split('.');
        var forged = $"{parts[0]}.{parts[1]}.{parts[2][..^4]}AAAA";

        Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync("/api/v1/auth/me")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallApiAsync(forged)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallApiAsync("not-a-token")).StatusCode);
    }

    [Fact]
    public async Task Api_Me_ReturnsTheUserOfTheToken()
    {
        var email = await CreateUserAsync("admin");
        var tokens = await PasswordGrantAsync(email);

        var response = await CallApiAsync(tokens.AccessToken!);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var me = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var user = me.RootElement.GetProperty("user");
        Assert.Equal(email, user.GetProperty("email").GetString());
        Assert.Equal(["admin", "user"], user.GetProperty("roles").EnumerateArray().Select(e => e.GetString()));
        Assert.NotEqual(JsonValueKind.Null, user.GetProperty("last_login").ValueKind);
    }

    static byte[] Base64UrlDecode(string value) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.DecodeBytes(value);
}
