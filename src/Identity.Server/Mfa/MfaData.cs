namespace Identity.Server.Mfa;

/// <summary>
/// A user's second factor: TOTP (the secret) or a phone that receives codes by SMS (the number). Both are encrypted
/// with Data Protection; the factor works only once confirmed.
/// </summary>
public sealed class MfaFactor
{
    public required string UserId { get; set; }

    /// <summary>totp or phone.</summary>
    public string Method { get; set; } = MultiFactor.Totp;

    public required string ProtectedSecret { get; set; }
    public string? ProtectedPhone { get; set; }
    public bool Enabled { get; set; }

    /// <summary>The time step of the last accepted code: a code is good once, so an overheard code cannot be replayed.</summary>
    public long LastTimeStep { get; set; }

    public int FailedAttempts { get; set; }
    public DateTimeOffset? LockedUntil { get; set; }

    /// <summary>Salt of the backup code hashes (PBKDF2), one per setup.</summary>
    public required string BackupSalt { get; set; }
}

/// <summary>A single-use backup code, stored only as a hash.</summary>
public sealed class MfaBackupCode
{
    public long Id { get; set; }
    public required string UserId { get; set; }
    public required string Hash { get; set; }
    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>
/// A login waiting for its second factor: the mfa_token is returned to the client once and stored only as its
/// SHA-256, is short-lived, single-use, and dies after too many wrong codes.
/// </summary>
public sealed class MfaChallenge
{
    public required string Id { get; set; }
    public required string UserId { get; set; }
    public string? ClientId { get; set; }

    /// <summary>The login's remember_me (the auth API's), for the tokens its completion issues.</summary>
    public bool RememberMe { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
    public int Attempts { get; set; }
    public DateTimeOffset? ConsumedAt { get; set; }

    /// <summary>The external provider of the sign-in held here, null for a password sign-in: it decides the amr and idp.</summary>
    public string? IdentityProvider { get; set; }

    /// <summary>The login waits for an authenticator app to be set up: the app's first right code turns it on.</summary>
    public bool Enrollment { get; set; }

    /// <summary>For a phone factor: the SHA-256 of the code sent by SMS for this challenge.</summary>
    public string? CodeHash { get; set; }
}
