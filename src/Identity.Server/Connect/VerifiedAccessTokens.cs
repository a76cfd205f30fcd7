using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using OpenIddict.Abstractions;
using OpenIddict.Validation;
using static OpenIddict.Validation.OpenIddictValidationEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A machine's access token (client_credentials, <see cref="SelfContainedAccessTokens"/>) has no token row and no
/// session to look up, so validating it depends only on its text, the signing keys (fixed for the process's life) and the
/// clock: signature, issuer and audience give the same answer every time, and only expiry changes. A machine client
/// presents the same token to the APIs thousands of times a second, and re-running the JWT checks each time was a
/// fifth of a /v1/authorize request's CPU. So the principal of such a token is remembered, under a SHA-256 of the
/// token, until the token expires, and handed out (as a copy) instead of validating again. Tokens with a row or a
/// session (every token issued to a user, and machine tokens when they are stored) are never remembered: they are
/// checked against the store on every request, so revoking one, or ending its session, counts at once.
/// </summary>
public sealed class VerifiedAccessTokens(TimeProvider time)
{
    const int MaxEntries = 10_000;

    readonly ConcurrentDictionary<string, ClaimsPrincipal> verified = new(StringComparer.Ordinal);

    ClaimsPrincipal? Find(string token)
    {
        var key = Key(token);
        if (!verified.TryGetValue(key, out var principal))
            return null;
        if (principal.GetExpirationDate() > time.GetUtcNow())
            return principal.Clone();
        verified.TryRemove(key, out _);
        return null;
    }

    void Add(string token, ClaimsPrincipal principal)
    {
        if (principal.GetTokenId() is not null || principal.GetAuthorizationId() is not null || principal.GetExpirationDate() is null)
            return;
        // A bound, not an eviction policy: past it (only with thousands of live machine tokens) all validate again once.
        if (verified.Count >= MaxEntries)
            verified.Clear();
        verified[Key(token)] = principal.Clone();
    }

    static string Key(string token) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>Before OpenIddict validates the access token: a remembered one is taken as validated.</summary>
    public sealed class Reuse(VerifiedAccessTokens tokens) : IOpenIddictValidationHandler<ProcessAuthenticationContext>
    {
        public static OpenIddictValidationHandlerDescriptor Descriptor { get; } = OpenIddictValidationHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .UseSingletonHandler<Reuse>()
            .SetOrder(OpenIddictValidationHandlers.ValidateAccessToken.Descriptor.Order - 1)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ProcessAuthenticationContext context)
        {
            if (context.ValidateAccessToken && !string.IsNullOrEmpty(context.AccessToken) && tokens.Find(context.AccessToken) is { } principal)
            {
                context.AccessTokenPrincipal = principal;
                context.ValidateAccessToken = false;
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>After OpenIddict validated an access token: remember it if it is self-contained.</summary>
    public sealed class Remember(VerifiedAccessTokens tokens) : IOpenIddictValidationHandler<ProcessAuthenticationContext>
    {
        public static OpenIddictValidationHandlerDescriptor Descriptor { get; } = OpenIddictValidationHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .UseSingletonHandler<Remember>()
            .SetOrder(OpenIddictValidationHandlers.ValidateAccessToken.Descriptor.Order + 1)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ProcessAuthenticationContext context)
        {
            if (context.ValidateAccessToken && !string.IsNullOrEmpty(context.AccessToken) && context.AccessTokenPrincipal is { } principal)
                tokens.Add(context.AccessToken, principal);
            return ValueTask.CompletedTask;
        }
    }
}
