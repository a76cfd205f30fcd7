using System.Collections.Immutable;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A refresh token carries the sign-in, not the account: its subject, scopes, resources, session, authentication
/// methods and time, identity provider and browser session. Every renewal reads the account's claims (email, name,
/// roles, groups, organization: <see cref="PrincipalFactory.AccountClaims"/>; the declared user attributes) from the database and sets every claim's
/// destinations again (<see cref="PrincipalFactory.RenewAsync"/>), so the token does not carry them either: it holds
/// no personal data beyond the subject, and is about half the size to seal and open at every refresh.
/// </summary>
public sealed class RefreshTokenClaims(Users.UserAttributes attributes) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
        .UseSingletonHandler<RefreshTokenClaims>()
        .SetOrder(OpenIddictServerHandlers.PrepareRefreshTokenPrincipal.Descriptor.Order + 1)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.RefreshTokenPrincipal is not { } principal)
            return ValueTask.CompletedTask;
        foreach (var type in PrincipalFactory.AccountClaims.Concat(attributes.Declared.Select(a => a.Name)))
            principal.RemoveClaims(type);
        // The principal is OpenIddict's copy for this token: the access and identity tokens keep their destinations.
        foreach (var claim in principal.Claims)
            claim.SetDestinations(ImmutableArray<string>.Empty);
        return ValueTask.CompletedTask;
    }
}
