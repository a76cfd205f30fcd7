using Identity.Server.Hosting;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Refresh tokens and authorization codes come back only to this server, so nobody else needs a public key to check
/// them. They are signed with HMAC-SHA256 under keys/private-tokens.key instead of the RSA certificates, as Duende
/// IdentityServer and ASP.NET Core protect what only they read. A refresh then costs one private-key operation
/// (signing the access token) instead of three (decrypting the refresh token, signing the access token, signing the
/// next refresh token). Access and identity tokens are still signed with the published key.
/// Codes are also encrypted (AES-256 key wrap): they pass through the browser and carry the account's claims. Refresh
/// tokens are not, as Keycloak's are not: they carry ids, scopes and times only (<see cref="RefreshTokenClaims"/>),
/// nothing their holder does not know, and the encryption was a seventh of a refresh's CPU. The signature keeps them
/// unalterable. Tokens issued earlier (encrypted, or with the certificates, which stay registered) still work.
/// </summary>
public sealed class PrivateTokenProtection(SigningKeys keys) : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
        .UseSingletonHandler<PrivateTokenProtection>()
        .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 1)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        if (context.TokenType is not (TokenTypeIdentifiers.AccessToken or TokenTypeIdentifiers.IdentityToken))
        {
            context.SigningCredentials = keys.PrivateTokenSigning;
            context.EncryptionCredentials = context.TokenType == TokenTypeIdentifiers.RefreshToken ? null : keys.PrivateTokenEncryption;
        }
        return ValueTask.CompletedTask;
    }
}
