using Identity.Server.Events;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A refresh token or code presented again after it was redeemed means someone else holds a copy: OpenIddict then
/// revokes the tokens of the grant that have rows (its ValidateTokenEntry, right after this). This ends the session
/// itself too, which ends its access tokens, which have no rows (<see cref="SelfContainedAccessTokens"/>), and raises
/// token.reuse_detected so the audit log and the webhooks hear about the likely theft.
/// </summary>
public sealed class ReportTokenReuse(IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations, SecurityEvents events)
    : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
        .UseScopedHandler<ReportTokenReuse>()
        .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 1)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.IsRejected || context.TokenId is not { } id || await tokens.FindByIdAsync(id) is not { } token ||
            !await tokens.HasStatusAsync(token, OpenIddictConstants.Statuses.Redeemed))
            return;
        await events.RaiseNowAsync(EventTypes.TokenReuseDetected, new SecurityEvents.Subject(await tokens.GetSubjectAsync(token)),
            new { token_type = await tokens.GetTypeAsync(token), session = context.AuthorizationId, client = context.Request?.ClientId }, success: false);
        if (context.AuthorizationId is { } session && await authorizations.FindByIdAsync(session) is { } authorization)
            await authorizations.TryRevokeAsync(authorization);
    }
}
