using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Access tokens are self-contained JWTs, as Duende IdentityServer, Keycloak and Auth0 issue them: no token row is
/// written per access token, which was the largest single cost of a token request (and most of the token table).
/// <list type="bullet">
/// <item>An access token issued within a sign-in carries its session (the OpenIddict authorization). Every check this
/// server makes of it (its own APIs, introspection, userinfo) looks the session up, so ending the session (logout,
/// session revocation, refresh token reuse, revoking the refresh token or the access token itself) ends the access
/// token at once, as a row of its own did. OpenIddict looks a session up only through a token's row, so
/// <see cref="SessionOfAccessToken"/> hands it the session the token names.</item>
/// <item>A client_credentials token has no session: it is verified by signature, audience and expiry alone and
/// cannot be revoked, so keep its lifetime short, or set Identity:Tokens:StoreClientCredentialsTokens to store it
/// (revocable, slower).</item>
/// <item>Any other access token keeps its row, so it stays revocable on its own: one without a session, and one
/// from a token exchange, whose session is another client's that its revocation must not end.</item>
/// </list>
/// </summary>
public sealed class SelfContainedAccessTokens(TokenOptions options) : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
        .UseSingletonHandler<SelfContainedAccessTokens>()
        .SetOrder(OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        if (context.TokenType == OpenIddictConstants.TokenTypeIdentifiers.AccessToken &&
            ((context.Principal.GetAuthorizationId() is not null && context.Request?.IsTokenExchangeGrantType() != true) ||
             (!options.StoreClientCredentialsTokens && context.Request?.IsClientCredentialsGrantType() == true)))
            context.CreateTokenEntry = false;
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// OpenIddict finds the session (authorization) of a token through its row; a self-contained access token has none,
/// so its session is taken from the token itself (the signed oi_au_id claim), and OpenIddict then refuses the token
/// once the session has ended. Registered with the server (introspection, userinfo) and with the validation of the
/// server's own APIs.
/// </summary>
public static class SessionOfAccessToken
{
    static string? SessionOf(System.Security.Claims.ClaimsPrincipal? principal, string? tokenId, string? resolved) =>
        resolved is null && tokenId is null && principal?.GetTokenType() == OpenIddictConstants.TokenTypeIdentifiers.AccessToken
            ? principal.GetAuthorizationId()
            : resolved;

    public sealed class Server : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<Server>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateAuthorizationEntry.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ValidateTokenContext context)
        {
            context.AuthorizationId = SessionOf(context.Principal, context.TokenId, context.AuthorizationId);
            return ValueTask.CompletedTask;
        }
    }

    public sealed class Validation : OpenIddict.Validation.IOpenIddictValidationHandler<OpenIddict.Validation.OpenIddictValidationEvents.ValidateTokenContext>
    {
        public static OpenIddict.Validation.OpenIddictValidationHandlerDescriptor Descriptor { get; } =
            OpenIddict.Validation.OpenIddictValidationHandlerDescriptor.CreateBuilder<OpenIddict.Validation.OpenIddictValidationEvents.ValidateTokenContext>()
                .UseSingletonHandler<Validation>()
                .SetOrder(OpenIddict.Validation.OpenIddictValidationHandlers.Protection.ValidateAuthorizationEntry.Descriptor.Order - 1)
                .SetType(OpenIddict.Validation.OpenIddictValidationHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(OpenIddict.Validation.OpenIddictValidationEvents.ValidateTokenContext context)
        {
            context.AuthorizationId = SessionOf(context.Principal, context.TokenId, context.AuthorizationId);
            return ValueTask.CompletedTask;
        }
    }
}
