namespace Identity.Server.Clients;

/// <summary>What the server makes sure exists at start: bound from the "Identity" section.</summary>
public sealed class SeedOptions
{
    public const string Section = "Identity";

    public AdminOptions Admin { get; set; } = new();
    public List<ScopeOptions> Scopes { get; set; } = [];
    public List<ClientOptions> Clients { get; set; } = [];
}

public sealed class AdminOptions
{
    public string? Email { get; set; }
    public string? Password { get; set; }
}

/// <summary>A downstream API scope; its resources are the audiences of the access tokens that carry it.</summary>
public sealed class ScopeOptions
{
    public string Name { get; set; } = "";
    public string? DisplayName { get; set; }
    public List<string> Resources { get; set; } = [];
}

public sealed class ClientOptions
{
    public string ClientId { get; set; } = "";

    /// <summary>Absent for a public client (a browser or native app), which must then use PKCE.</summary>
    public string? ClientSecret { get; set; }

    /// <summary>
    /// Instead of a secret: the client's public keys, a JSON Web Key Set as JSON text. The client then authenticates
    /// with a JWT it signs with its private key (private_key_jwt, RFC 7523), which RFC 9700 §2.5 prefers to a shared
    /// secret: the server holds nothing that could sign in as the client.
    /// </summary>
    public string? Jwks { get; set; }

    /// <summary>
    /// Or where the client publishes them (its jwks_uri), fetched at every start and when it rotates
    /// (<see cref="RemoteKeys"/>). If the address does not answer at a start, the keys from the last start are kept.
    /// </summary>
    public string? JwksUri { get; set; }

    /// <summary>This client with its keys as given (the set fetched from <see cref="JwksUri"/>).</summary>
    public ClientOptions WithJwks(string jwks)
    {
        var copy = (ClientOptions)MemberwiseClone();
        copy.Jwks = jwks;
        return copy;
    }

    public string? DisplayName { get; set; }
    public List<string> GrantTypes { get; set; } = [];
    public List<string> RedirectUris { get; set; } = [];
    public List<string> PostLogoutRedirectUris { get; set; } = [];
    public List<string> Scopes { get; set; } = [];

    /// <summary>
    /// Where the server POSTs a logout token when one of the client's sessions ends (OIDC Back-Channel Logout 1.0):
    /// the user signed out, or the session was ended through the API.
    /// </summary>
    public string? BackchannelLogoutUri { get; set; }

    /// <summary>
    /// The page the sign-out page loads in an iframe so the client ends its own browser session (OIDC Front-Channel
    /// Logout 1.0): on the scheme, host and port of one of its redirect URIs.
    /// </summary>
    public string? FrontchannelLogoutUri { get; set; }

    /// <summary>Whether the front-channel logout page gets iss and sid, to tell which session ended (default true).</summary>
    public bool FrontchannelLogoutSessionRequired { get; set; } = true;

    /// <summary>
    /// For a SCIM client (scope scim): the email domain of the one organization whose users and groups it provisions,
    /// say a tenant's own Entra ID or Okta. Unset, the client provisions server-wide: give that only to your own directory.
    /// </summary>
    public string? ScimOrganization { get; set; }

    /// <summary>
    /// The client must push its authorization requests first (RFC 9126): the browser then carries only a request_uri,
    /// so no parameter can be read or changed on the way. Every code-flow client may push; this makes it the only way.
    /// </summary>
    public bool RequirePushedAuthorizationRequests { get; set; }

    /// <summary>
    /// Every token request of the client must carry a DPoP proof (RFC 9449 §5.2's dpop_bound_access_tokens), so none of
    /// its access tokens is a bearer token.
    /// </summary>
    public bool RequireDPoP { get; set; }

    /// <summary>
    /// The client must sign its authorization requests (RFC 9101 §10.5's require_signed_request_object): a request
    /// object in request, in the URL or pushed. Needs the client's keys (Jwks or JwksUri).
    /// </summary>
    public bool RequireSignedRequestObject { get; set; }

    /// <summary>
    /// The weakest sign-in this client takes (Keycloak's minimum ACR value): the multi-factor or phishing-resistant acr
    /// (Connect/AuthenticationContext). A weaker session steps up; an account that cannot is refused.
    /// </summary>
    public string? MinimumAcr { get; set; }

    /// <summary>implicit (trusted first-party app, no consent screen) or explicit (the user approves once).</summary>
    public string ConsentType { get; set; } = "explicit";

    /// <summary>
    /// This client's access tokens live this long instead of Identity:Tokens:AccessTokenLifetime (Keycloak's and Duende's
    /// per-client lifespan): 1 minute to 1 day. Null: the server's.
    /// </summary>
    public TimeSpan? AccessTokenLifetime { get; set; }

    /// <summary>
    /// This client's refresh tokens live this long from their last use instead of Identity:Tokens:RefreshTokenLifetime:
    /// 5 minutes to 1 year; the sign-in maximum (RefreshTokenAbsoluteLifetime) still ends them. Null: the server's.
    /// </summary>
    public TimeSpan? RefreshTokenLifetime { get; set; }
}
