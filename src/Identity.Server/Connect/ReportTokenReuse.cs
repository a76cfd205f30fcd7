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
        await ReportAsync(events, authorizations, await tokens.GetSubjectAsync(token), await tokens.GetTypeAsync(token),
            context.AuthorizationId, context.Request?.ClientId);
    }

    /// <summary>
    /// What a reuse means, wherever it is found (here, or for a refresh token without a row in
    /// <see cref="SessionRefreshTokens"/>): token.reuse_detected is raised, and the session ends.
    /// </summary>
    internal static async Task ReportAsync(SecurityEvents events, IOpenIddictAuthorizationManager authorizations,
        string? subject, string? tokenType, string? session, string? client)
    {
        await events.RaiseNowAsync(EventTypes.TokenReuseDetected, new SecurityEvents.Subject(subject),
            new { token_type = tokenType, session, client }, success: false);
        if (session is not null && await authorizations.FindByIdAsync(session) is { } authorization)
            await authorizations.TryRevokeAsync(authorization);
    }
}
