using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Access tokens issued with client_credentials are self-contained JWTs, as Duende IdentityServer and Auth0 issue
/// them: no token row is written per token, which is most of the cost of a machine-to-machine token. They are
/// verified by signature, audience and expiry alone, so they cannot be revoked one by one: keep their lifetime
/// short, or set Identity:Tokens:StoreClientCredentialsTokens to store them (revocable, slower). Tokens issued to
/// users are always stored, so their sessions and refresh chains can be revoked at once.
/// </summary>
public sealed class SelfContainedClientTokens : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
        .UseSingletonHandler<SelfContainedClientTokens>()
        .SetOrder(OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        if (context.TokenType == OpenIddictConstants.TokenTypeIdentifiers.AccessToken && context.Request?.IsClientCredentialsGrantType() == true)
            context.CreateTokenEntry = false;
        return ValueTask.CompletedTask;
    }
}
