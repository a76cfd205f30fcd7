namespace Identity.Server.Sessions;

/// <summary>
/// What a session is beyond its OpenIddict authorization (which holds status, client, subject and the tokens):
/// where it started and when it was last used. Keyed by the authorization's id.
/// </summary>
public sealed class SessionInfo
{
    public required string AuthorizationId { get; set; }
    public required string UserId { get; set; }
    public string? ClientId { get; set; }

    /// <summary>The browser session the sign-in came through (the sid claim); null for the password grant and the auth API.</summary>
    public string? Sid { get; set; }
    public string? Ip { get; set; }
    public string? UserAgent { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset LastUsedAt { get; set; }

    /// <summary>
    /// When the user authenticated for this sign-in (its auth_time; a browser session's login can be older than the
    /// session), from which it lasts at most Identity:Tokens:RefreshTokenAbsoluteLifetime; null for earlier versions' sessions.
    /// </summary>
    public DateTimeOffset? AuthenticatedAt { get; set; }

    /// <summary>
    /// The id of the one refresh token of this session that may still be redeemed (see Connect/SessionRefreshTokens);
    /// null when the session has none, or its refresh tokens are rows of their own (issued by earlier versions).
    /// </summary>
    public string? RefreshTokenId { get; set; }

    /// <summary>
    /// How long each refresh token of this session lives from its issue, which is its session's last use (every
    /// refresh issues the next with the full lifetime); null for sessions recorded by earlier versions.
    /// </summary>
    public TimeSpan? RefreshTokenLifetime { get; set; }

    /// <summary>
    /// When its current refresh token expires unless used first, or the sign-in reaches <paramref name="maxLifetime"/>
    /// if sooner (Connect/SessionMaxLifetime); null without a refresh token, or when not known.
    /// </summary>
    public DateTimeOffset? RefreshTokenExpiresAt(TimeSpan maxLifetime) =>
        RefreshTokenId is null || RefreshTokenLifetime is not { } lifetime ? null
        : AuthenticatedAt + maxLifetime is { } end && end < LastUsedAt + lifetime ? end
        : LastUsedAt + lifetime;

    /// <summary>
    /// Its refresh token has expired unused, or the sign-in has lasted as long as one may, so nothing of it can be used
    /// any more: a session without remember me lapses after a day, not when the longest lifetime has passed. Unknown
    /// for sessions of earlier versions.
    /// </summary>
    public bool HasLapsed(DateTimeOffset now, TimeSpan maxLifetime) => RefreshTokenExpiresAt(maxLifetime) < now;
}

/// <summary>
/// A back-channel logout notice on its way to a client: kept in the database until it is delivered or given up, so a
/// restart or a crash does not lose it. The logout token is made at each attempt, so it is always fresh.
/// </summary>
public sealed class LogoutNotice
{
    public long Id { get; set; }
    public required string ClientId { get; set; }
    public required string Uri { get; set; }
    public required string Issuer { get; set; }
    public required string Subject { get; set; }
    public string? Sid { get; set; }
    public int Attempts { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }
}
