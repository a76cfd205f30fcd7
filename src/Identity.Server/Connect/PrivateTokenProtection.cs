using Identity.Server.Hosting;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Refresh tokens and authorization codes come back only to this server, so nobody else needs a public key to check
/// them. They are signed with HMAC-SHA256 and encrypted with AES-256 key wrap under keys/private-tokens.key instead of
/// the RSA certificates, as Duende IdentityServer and ASP.NET Core protect what only they read. A refresh then costs
/// one private-key operation (signing the access token) instead of three (decrypting the refresh token, signing the
/// access token, signing the next refresh token). Access and identity tokens are still signed with the published key.
/// Tokens issued before this existed were protected with the certificates, which stay registered, so they still work.
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
            context.EncryptionCredentials = keys.PrivateTokenEncryption;
        }
        return ValueTask.CompletedTask;
    }
}
