using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// RFC 7009 §2.1: revoking a refresh token should also invalidate the access tokens of the same grant. The grant is
/// the sign-in's authorization, so revoking a refresh token ends the whole session (this is also what logout does).
/// </summary>
public sealed class RevokeChainWithRefreshToken(IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens,
    Events.SecurityEvents events)
    : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
        .UseScopedHandler<RevokeChainWithRefreshToken>()
        .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order + 1_000)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        if (context.IsRejected || context.GenericTokenPrincipal.GetTokenType() is not OpenIddictConstants.TokenTypeIdentifiers.RefreshToken ||
            context.GenericTokenPrincipal.GetAuthorizationId() is not { } id)
            return;

        await tokens.RevokeByAuthorizationIdAsync(id);
        if (await authorizations.FindByIdAsync(id) is { } authorization)
            await authorizations.TryRevokeAsync(authorization);
        await events.RaiseNowAsync(Events.EventTypes.AuthLogout, new Events.SecurityEvents.Subject(context.GenericTokenPrincipal.GetClaim(OpenIddictConstants.Claims.Subject)),
            new { session = id, client = context.Request.ClientId });
    }
}
