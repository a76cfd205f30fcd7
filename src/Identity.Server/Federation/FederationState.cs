namespace Identity.Server.Federation;

/// <summary>
/// An external sign-in the auth API started for a first-party app: stored as the SHA-256 of its state, bound to the
/// provider, the app's redirect URI and its PKCE challenge, short-lived and spent by the first callback.
/// </summary>
public sealed class FederationState
{
    public required string Id { get; set; }
    public required string Provider { get; set; }
    public required string RedirectUri { get; set; }
    public required string CodeChallenge { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? ConsumedAt { get; set; }
}

/// <summary>The auth API's grant for finishing an external sign-in at /api/v1/auth/oauth/{provider}/callback.</summary>
public static class FederationGrant
{
    public const string Type = "urn:identity:params:oauth:grant-type:federation";
    public const string Provider = "upstream_provider";
    public const string Code = "upstream_code";
    public const string State = "upstream_state";
    public const string CodeVerifier = "upstream_code_verifier";
}
