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
    public string? Ip { get; set; }
    public string? UserAgent { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset LastUsedAt { get; set; }
}
