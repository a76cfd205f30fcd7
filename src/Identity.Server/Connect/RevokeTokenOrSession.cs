using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// RFC 7009 revocation, in place of OpenIddict's, which can only revoke a token that has a row:
/// <list type="bullet">
/// <item>A token with a row is revoked, as OpenIddict does.</item>
/// <item>A refresh token ends its session (the sign-in's authorization) with every token of it: §2.1 says revoking a
/// refresh token should invalidate the access tokens of the same grant (this is also what logout does). The refresh
/// tokens of a sign-in have no rows (<see cref="SessionRefreshTokens"/>); OpenIddict has already checked that the
/// caller is the client it was issued to.</item>
/// <item>An access token of a session has no row (<see cref="SelfContainedAccessTokens"/>): revoked by the client it
/// was issued to, it ends that session, which §2.1 allows ("MAY revoke the respective refresh token as well"). An API
/// among its audiences may not end the client's session: it is told the token cannot be revoked.</item>
/// <item>A client_credentials token without a row cannot be revoked: unsupported_token_type.</item>
/// </list>
/// </summary>
public sealed class RevokeTokenOrSession(IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, Events.SecurityEvents events)
    : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
        .UseScopedHandler<RevokeTokenOrSession>()
        .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        var principal = context.GenericTokenPrincipal;
        var type = principal.GetTokenType();
        var session = principal.GetAuthorizationId();
        if (principal.GetTokenId() is { } id)
        {
            if (await tokens.FindByIdAsync(id) is not { } token)
            {
                context.Reject(Errors.InvalidToken, "The token is not valid.");
                return;
            }
            if (!await tokens.TryRevokeAsync(token))
            {
                context.Reject(Errors.UnsupportedTokenType, "The token cannot be revoked.");
                return;
            }
            if (type != TokenTypeIdentifiers.RefreshToken)
                return;
        }
        else if (session is null || type switch
                 {
                     TokenTypeIdentifiers.AccessToken => principal.GetClaim(Claims.ClientId) != context.Request.ClientId,
                     TokenTypeIdentifiers.RefreshToken => principal.GetClaim(SessionRefreshTokens.IdClaim) is null,
                     _ => true,
                 })
        {
            context.Reject(Errors.UnsupportedTokenType, "The token is self-contained and cannot be revoked: it expires on its own.");
            return;
        }

        if (session is null)
            return;
        await tokens.RevokeByAuthorizationIdAsync(session);
        if (await authorizations.FindByIdAsync(session) is { } authorization)
            await authorizations.TryRevokeAsync(authorization);
        await events.RaiseNowAsync(Events.EventTypes.AuthLogout, new Events.SecurityEvents.Subject(principal.GetClaim(Claims.Subject)),
            new { session, client = context.Request.ClientId });
    }
}
