using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Clients;

public sealed class SqlitePrivateKeyJwtTests(SqliteServer server) : PrivateKeyJwtTests<SqliteServer>(server);
public sealed class PostgreSqlPrivateKeyJwtTests(PostgreSqlServer server) : PrivateKeyJwtTests<PostgreSqlServer>(server);

/// <summary>A client from configuration that has keys instead of a secret (Identity:Clients:N:Jwks).</summary>
public sealed class ConfiguredKeysServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:Clients:5:ClientId", ClientId),
    new("Identity:Clients:5:Jwks", JsonSerializer.Serialize(new { keys = new[] { Key.Public } })),
    new("Identity:Clients:5:GrantTypes:0", "client_credentials"),
    new("Identity:Clients:5:Scopes:0", DownstreamScope),
])
{
    public const string ClientId = "nightly-report";
    public static readonly PrivateKeyJwtTests<ConfiguredKeysServer>.ClientKey Key = PrivateKeyJwtTests<ConfiguredKeysServer>.NewRsaKey("ops-1");
}

public sealed class ConfiguredKeysTests(ConfiguredKeysServer server) : ServerTests<ConfiguredKeysServer>(server)
{
    [Fact]
    public async Task PrivateKeyJwt_AClientFromConfiguration_SignsInWithItsKey()
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ConfiguredKeysServer.ClientId, Scope = ServerFactory.DownstreamScope, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer,
                Value = PrivateKeyJwtTests<ConfiguredKeysServer>.Assertion(Issuer, ConfiguredKeysServer.ClientId, ConfiguredKeysServer.Key),
            },
        });

        Assert.False(response.IsError, response.Raw);
        Assert.Equal(ConfiguredKeysServer.ClientId, (await ValidateJwtAsync(response.AccessToken!, ServerFactory.DownstreamAudience)).Subject);
    }
}

/// <summary>
/// Clients that authenticate with their own keys (private_key_jwt, RFC 7523), as RFC 9700 §2.5 recommends: registered
/// through the clients API with their public keys only, they sign a short-lived assertion per request with a real
/// JsonWebTokenHandler and send it through Duende.IdentityModel, and each assertion works once.
/// </summary>
public abstract class PrivateKeyJwtTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    public sealed record ClientKey(SecurityKey Signing, string Algorithm, Dictionary<string, string> Public);

    public static ClientKey NewRsaKey(string kid)
    {
        var rsa = RSA.Create(2048);
        var parameters = rsa.ExportParameters(false);
        return new(new RsaSecurityKey(rsa) { KeyId = kid }, SecurityAlgorithms.RsaSha256, new()
        {
            ["kty"] = "RSA", ["kid"] = kid, ["use"] = "sig", ["n"] = Base64UrlEncoder.Encode(parameters.Modulus), ["e"] = Base64UrlEncoder.Encode(parameters.Exponent),
        });
    }

    static ClientKey NewEcKey(string kid)
    {
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var parameters = ec.ExportParameters(false);
        return new(new ECDsaSecurityKey(ec) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256, new()
        {
            ["kty"] = "EC", ["kid"] = kid, ["crv"] = "P-256", ["x"] = Base64UrlEncoder.Encode(parameters.Q.X), ["y"] = Base64UrlEncoder.Encode(parameters.Q.Y),
        });
    }

    // A 401 makes Duende's Error the HTTP reason; the OAuth error is in the body.
    static string? ErrorOf(ProtocolResponse response) => response.TryGet("error");

    static object Jwks(params ClientKey[] keys) => new { keys = keys.Select(k => k.Public) };

    // The explicit type of draft-ietf-oauth-rfc7523bis, and the issuer as audience: OpenIddict 7 asks for both, so that
    // no other JWT the client signed can pass for an assertion, nor an assertion made for another server.
    string Assertion(string clientId, ClientKey key, string? audience = null, TimeSpan? lifetime = null, string type = "client-authentication+jwt") =>
        Assertion(Issuer, clientId, key, audience, lifetime, type);

    public static string Assertion(string issuer, string clientId, ClientKey key, string? audience = null, TimeSpan? lifetime = null,
        string type = "client-authentication+jwt") =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            TokenType = type,
            Issuer = clientId,
            Audience = audience ?? issuer,
            Claims = new Dictionary<string, object> { ["sub"] = clientId, ["jti"] = Guid.NewGuid().ToString("N") },
            IssuedAt = DateTime.UtcNow,
            NotBefore = DateTime.UtcNow,
            Expires = DateTime.UtcNow + (lifetime ?? TimeSpan.FromMinutes(2)),
            SigningCredentials = new SigningCredentials(key.Signing, key.Algorithm),
        });

    Task<TokenResponse> TokenAsync(string clientId, string assertion) =>
        Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, Scope = ServerFactory.DownstreamScope,
            ClientAssertion = new ClientAssertion { Type = OidcConstants.ClientAssertionTypes.JwtBearer, Value = assertion },
            ClientCredentialStyle = ClientCredentialStyle.PostBody,
        });

    async Task<string> CreateClientAsync(string admin, string clientId, params ClientKey[] keys)
    {
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, grant_types = new[] { "client_credentials" }, scopes = new[] { ServerFactory.DownstreamScope },
            token_endpoint_auth_method = "private_key_jwt", jwks = Jwks(keys),
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return clientId;
    }

    [Fact]
    public async Task PrivateKeyJwt_EachSignedAssertionWorksOnce_AndOnlyWithTheRegisteredKey()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var key = NewRsaKey("k1");
        var clientId = await CreateClientAsync(admin, $"signer-{Guid.NewGuid():N}", key);
        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin);

        var assertion = Assertion(clientId, key);
        var first = await TokenAsync(clientId, assertion);
        Assert.False(first.IsError, first.Error + " " + first.ErrorDescription);
        var replayed = await TokenAsync(clientId, assertion);
        var otherKey = await TokenAsync(clientId, Assertion(clientId, NewRsaKey("k1")));
        var otherAudience = await TokenAsync(clientId, Assertion(clientId, key, audience: "https://elsewhere.example.test/"));
        var tokenEndpointAudience = await TokenAsync(clientId, Assertion(clientId, key, audience: Issuer + "connect/token"));
        var untyped = await TokenAsync(clientId, Assertion(clientId, key, type: "JWT"));
        var longLived = await TokenAsync(clientId, Assertion(clientId, key, lifetime: TimeSpan.FromHours(1)));
        var guessedSecret = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = "not-a-secret-this-client-has", Scope = ServerFactory.DownstreamScope,
        });
        // The other endpoints that authenticate clients take assertions too.
        var introspection = await Http.IntrospectTokenAsync(new TokenIntrospectionRequest
        {
            Address = "/connect/introspect", ClientId = clientId, Token = first.AccessToken!, ClientCredentialStyle = ClientCredentialStyle.PostBody,
            ClientAssertion = new ClientAssertion { Type = OidcConstants.ClientAssertionTypes.JwtBearer, Value = Assertion(clientId, key) },
        });
        var rotate = await ApiAsync(HttpMethod.Post, $"/api/v1/clients/{clientId}/secret", admin);

        var token = await ValidateJwtAsync(first.AccessToken!, ServerFactory.DownstreamAudience);
        Assert.Equal(clientId, token.Subject);
        Assert.Equal("invalid_client", ErrorOf(replayed));
        Assert.Contains("already used", replayed.ErrorDescription);
        Assert.Equal("invalid_client", ErrorOf(otherKey));
        Assert.Equal("invalid_client", ErrorOf(otherAudience));
        Assert.Equal("invalid_client", ErrorOf(tokenEndpointAudience));
        Assert.Equal("invalid_client", ErrorOf(untyped));
        Assert.Equal("invalid_client", ErrorOf(longLived));
        Assert.Equal("invalid_client", ErrorOf(guessedSecret));
        Assert.False(introspection.IsError, introspection.Error);
        Assert.True(introspection.IsActive);

        var view = read.Body.GetProperty("client");
        Assert.Equal("confidential", view.GetProperty("client_type").GetString());
        Assert.Equal("private_key_jwt", view.GetProperty("token_endpoint_auth_method").GetString());
        Assert.Equal(key.Public["n"], view.GetProperty("jwks").GetProperty("keys")[0].GetProperty("n").GetString());
        Assert.False(read.Body.TryGetProperty("client_secret", out var secret) && secret.ValueKind != JsonValueKind.Null);
        Assert.Equal(HttpStatusCode.BadRequest, rotate.Status);
    }

    [Fact]
    public async Task PrivateKeyJwt_TheClientRollsItsKeysOverThroughTheApi()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var (oldKey, newKey) = (NewRsaKey("2025"), NewEcKey("2026"));
        var clientId = await CreateClientAsync(admin, $"roller-{Guid.NewGuid():N}", oldKey);

        var withOld = await TokenAsync(clientId, Assertion(clientId, oldKey));
        // Both published for the changeover, then the old one withdrawn.
        var both = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { jwks = Jwks(oldKey, newKey) });
        var oldDuring = await TokenAsync(clientId, Assertion(clientId, oldKey));
        var newDuring = await TokenAsync(clientId, Assertion(clientId, newKey));
        var onlyNew = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { jwks = Jwks(newKey) });
        var oldAfter = await TokenAsync(clientId, Assertion(clientId, oldKey));
        var newAfter = await TokenAsync(clientId, Assertion(clientId, newKey));
        var toSecret = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { token_endpoint_auth_method = "client_secret_basic" });

        Assert.False(withOld.IsError, withOld.Error);
        Assert.Equal(HttpStatusCode.OK, both.Status);
        Assert.False(oldDuring.IsError, oldDuring.Error);
        Assert.False(newDuring.IsError, newDuring.Error);
        Assert.Equal(HttpStatusCode.OK, onlyNew.Status);
        Assert.Equal("invalid_client", ErrorOf(oldAfter));
        Assert.False(newAfter.IsError, newAfter.Error);
        Assert.Equal(HttpStatusCode.BadRequest, toSecret.Status);
    }

    [Fact]
    public async Task PrivateKeyJwt_UnsafeOrMalformedKeysAreRefusedWithTheFieldAtFault()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        using var rsa = RSA.Create(2048);
        var full = rsa.ExportParameters(true);
        using var weak = RSA.Create(1024);
        var weakParameters = weak.ExportParameters(false);
        var cases = new (string Name, object Body, string Field)[]
        {
            ("a private RSA key", new { kty = "RSA", kid = "p", n = Base64UrlEncoder.Encode(full.Modulus), e = Base64UrlEncoder.Encode(full.Exponent),
                d = Base64UrlEncoder.Encode(full.D) }, "jwks"),
            ("a 1024-bit key", new { kty = "RSA", kid = "w", n = Base64UrlEncoder.Encode(weakParameters.Modulus), e = Base64UrlEncoder.Encode(weakParameters.Exponent) }, "jwks"),
            ("a symmetric key", new { kty = "oct", kid = "s", k = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32)) }, "jwks"),
            ("an encryption key", new { kty = "RSA", kid = "enc", use = "enc", n = Base64UrlEncoder.Encode(full.Modulus), e = Base64UrlEncoder.Encode(full.Exponent) }, "jwks"),
        };
        var answers = new List<(string Name, string Field, (HttpStatusCode, JsonElement, HttpResponseMessage) Answer)>();
        foreach (var (name, key, field) in cases)
            answers.Add((name, field, await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
            {
                grant_types = new[] { "client_credentials" }, token_endpoint_auth_method = "private_key_jwt", jwks = new { keys = new[] { key } },
            })));
        answers.Add(("no keys", "jwks", await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            grant_types = new[] { "client_credentials" }, token_endpoint_auth_method = "private_key_jwt",
        })));
        answers.Add(("not a key set", "jwks", await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            grant_types = new[] { "client_credentials" }, token_endpoint_auth_method = "private_key_jwt", jwks = new { keys = "none" },
        })));
        answers.Add(("keys beside a secret", "jwks", await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            grant_types = new[] { "client_credentials" }, jwks = Jwks(NewRsaKey("k")),
        })));
        answers.Add(("an unknown method", "token_endpoint_auth_method", await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            grant_types = new[] { "client_credentials" }, token_endpoint_auth_method = "client_secret_jwt",
        })));

        foreach (var (name, field, answer) in answers)
        {
            Assert.True(answer.Item1 == HttpStatusCode.BadRequest, $"{name}: {answer.Item1} {answer.Item2}");
            Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
            Assert.Equal(field, answer.Item2.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        }
    }
}
