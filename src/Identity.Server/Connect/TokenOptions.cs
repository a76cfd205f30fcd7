namespace Identity.Server.Connect;

public sealed class TokenOptions
{
    public const string Section = "Identity:Tokens";

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Sliding: every refresh issues a new refresh token with a full lifetime and retires the old one.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan IdentityTokenLifetime { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>Opt-in: encrypted access tokens can only be read by this server (introspection), not by third parties.</summary>
    public bool EncryptAccessTokens { get; set; }

    /// <summary>Store client_credentials access tokens so each can be revoked (see SelfContainedClientTokens).</summary>
    public bool StoreClientCredentialsTokens { get; set; }
}

/// <summary>The server's own API: its scope and the audience its access tokens must carry.</summary>
public static class ServerApi
{
    public const string Scope = "identity";
    public const string Audience = "identity";
    public const string Policy = "identity-api";
}
