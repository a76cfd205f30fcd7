using System.Security.Claims;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// How long a sign-in lasts at most, however often its refresh tokens are used (Identity:Tokens:RefreshTokenAbsoluteLifetime):
/// Keycloak's SSO Session Max, Duende's and Auth0's absolute refresh token lifetime. Counted from when the user last
/// proved who they are (auth_time, which every refresh token carries), so a stolen or forgotten refresh token chain,
/// and a browser session kept alive by use, end with it, and the user signs in again (RFC 9700 §4.14.2).
/// </summary>
public sealed class SessionMaxLifetime(TokenOptions tokens, TimeProvider time) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
        .UseSingletonHandler<SessionMaxLifetime>()
        .SetOrder(OpenIddictServerHandlers.PrepareRefreshTokenPrincipal.Descriptor.Order + 2)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    /// <summary>When the sign-in of <paramref name="principal"/> ends, whatever its refresh tokens say; null without auth_time.</summary>
    public static DateTimeOffset? EndOf(ClaimsPrincipal principal, TokenOptions tokens) =>
        PrincipalFactory.AuthenticatedAt(principal) + tokens.RefreshTokenAbsoluteLifetime;

    /// <summary>A refresh token never outlives its sign-in: its sliding lifetime stops at the end.</summary>
    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.RefreshTokenPrincipal is not { } principal || EndOf(principal, tokens) is not { } end ||
            principal.GetExpirationDate() is { } expires && expires <= end)
            return ValueTask.CompletedTask;
        if (end > time.GetUtcNow())
            principal.SetExpirationDate(end);
        else
        {
            // A sign-in already over (a token exchange of an old one): the tokens it asked for, without a refresh token.
            context.GenerateRefreshToken = false;
            context.IncludeRefreshToken = false;
        }
        return ValueTask.CompletedTask;
    }
}
