using OpenIddict.Abstractions;

namespace Identity.Server.Connect;

public sealed class TokenOptions
{
    public const string Section = "Identity:Tokens";

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Sliding: every refresh issues a new refresh token with a full lifetime and retires the old one.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>
    /// The refresh tokens of an /api/v1/auth sign-in without the seed's remember_me: also sliding, so an app in daily
    /// use stays signed in, but one left alone for longer signs in again (RefreshTokenLifetime is what remember_me keeps).
    /// </summary>
    public TimeSpan NotRememberedRefreshTokenLifetime { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The longest a sign-in lasts from the user's authentication, however its refresh tokens slide (see SessionMaxLifetime).</summary>
    public TimeSpan RefreshTokenAbsoluteLifetime { get; set; } = TimeSpan.FromDays(30);

    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan IdentityTokenLifetime { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>Opt-in: encrypted access tokens can only be read by this server (introspection), not by third parties.</summary>
    public bool EncryptAccessTokens { get; set; }

    /// <summary>Store client_credentials access tokens so each can be revoked (see SelfContainedAccessTokens).</summary>
    public bool StoreClientCredentialsTokens { get; set; }

    /// <summary>Every DPoP proof must carry a nonce this server handed out (RFC 9449 §8, §9; see DPoPNonces).</summary>
    public bool RequireDPoPNonce { get; set; }
}

/// <summary>The server's own API: its scope, the audience its access tokens must carry, and who may call what.</summary>
public static class ServerApi
{
    public const string Scope = "identity";
    public const string Audience = "identity";

    /// <summary>The /api/v1 APIs act for a user: a user's token (a client's own token has no account to act for).</summary>
    public const string Policy = "identity-api";

    /// <summary>
    /// The policy decision endpoints answer for services (client credentials): their answers tell who exists and
    /// which roles and organization they have, which no end user may ask about others.
    /// </summary>
    public const string ServicePolicy = "identity-services";

    /// <summary>A client acting as itself (client credentials): its token's subject is its own client id.</summary>
    public static bool IsClient(System.Security.Claims.ClaimsPrincipal principal) =>
        principal.GetClaim(OpenIddictConstants.Claims.Subject) is { } subject && subject == principal.GetClaim(OpenIddictConstants.Claims.ClientId);
}
