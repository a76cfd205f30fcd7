using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

/// <summary>A client description OpenIddict must not be given, with the field at fault.</summary>
public sealed class InvalidClientException(string field, string problem) : Exception(problem)
{
    public string Field { get; } = field;
}

/// <summary>
/// What a client may do, as OpenIddict permissions, from its description: the same rules for clients from
/// configuration and from the clients API.
/// </summary>
public static class ClientRegistration
{
    public static readonly IReadOnlyDictionary<string, string> GrantPermissions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [GrantTypes.AuthorizationCode] = Permissions.GrantTypes.AuthorizationCode,
        [GrantTypes.RefreshToken] = Permissions.GrantTypes.RefreshToken,
        [GrantTypes.ClientCredentials] = Permissions.GrantTypes.ClientCredentials,
        [GrantTypes.Password] = Permissions.GrantTypes.Password,
        [GrantTypes.DeviceCode] = Permissions.GrantTypes.DeviceCode,
        [GrantTypes.TokenExchange] = Permissions.GrantTypes.TokenExchange,
    };

    /// <summary>The grant types that <paramref name="permissions"/> allow, in <see cref="GrantPermissions"/>' order.</summary>
    public static IEnumerable<string> GrantTypesOf(IEnumerable<string> permissions) =>
        GrantPermissions.Where(g => permissions.Contains(g.Value)).Select(g => g.Key);

    /// <summary>
    /// The OpenIddict descriptor of <paramref name="client"/>; <paramref name="firstParty"/> only for the auth API's
    /// own client, which finishes external sign-ins (/api/v1/auth/oauth/{provider}/callback) with the federation grant.
    /// </summary>
    public static OpenIddictApplicationDescriptor Describe(ClientOptions client, bool firstParty = false)
    {
        var keys = string.IsNullOrWhiteSpace(client.Jwks) ? null : PublicSigningKeys(client.Jwks);
        if (keys is not null && !string.IsNullOrEmpty(client.ClientSecret))
            throw new InvalidClientException("jwks", "a client authenticates with a secret or with its keys (private_key_jwt), not both");
        var isPublic = string.IsNullOrEmpty(client.ClientSecret) && keys is null;
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = client.ClientId,
            ClientSecret = string.IsNullOrEmpty(client.ClientSecret) ? null : client.ClientSecret,
            JsonWebKeySet = keys,
            ClientType = isPublic ? ClientTypes.Public : ClientTypes.Confidential,
            DisplayName = client.DisplayName ?? client.ClientId,
            ConsentType = client.ConsentType.ToLowerInvariant() switch
            {
                "explicit" => ConsentTypes.Explicit,
                "implicit" => ConsentTypes.Implicit,
                var other => throw new InvalidClientException("consent_type", $"ConsentType '{other}' is not implicit or explicit"),
            },
        };

        descriptor.Permissions.Add(Permissions.Endpoints.Token);
        descriptor.Permissions.Add(Permissions.Endpoints.Revocation);
        if (!isPublic)
            descriptor.Permissions.Add(Permissions.Endpoints.Introspection);

        foreach (var grant in client.GrantTypes)
        {
            if (!GrantPermissions.TryGetValue(grant, out var permission))
                throw new InvalidClientException("grant_types", $"grant type '{grant}' is not one of {string.Join(", ", GrantPermissions.Keys)}");
            if (isPublic && grant is GrantTypes.ClientCredentials or GrantTypes.TokenExchange)
                throw new InvalidClientException("grant_types", $"{grant} needs a confidential client (a secret or keys)");
            descriptor.Permissions.Add(permission);
            // A password login with MFA is finished with the MFA grant: whoever may do the first may do the second.
            if (grant is GrantTypes.Password)
                descriptor.Permissions.Add(Permissions.Prefixes.GrantType + Mfa.MfaGrant.Type);
            if (grant is GrantTypes.DeviceCode)
                descriptor.Permissions.Add(Permissions.Endpoints.DeviceAuthorization);
        }

        if (firstParty)
            descriptor.Permissions.Add(Permissions.Prefixes.GrantType + Federation.FederationGrant.Type);

        if (client.GrantTypes.Contains(GrantTypes.AuthorizationCode))
        {
            if (client.RedirectUris.Count == 0)
                throw new InvalidClientException("redirect_uris", "authorization_code needs at least one redirect URI");
            descriptor.Permissions.Add(Permissions.Endpoints.Authorization);
            descriptor.Permissions.Add(Permissions.Endpoints.PushedAuthorization);
            descriptor.Permissions.Add(Permissions.Endpoints.EndSession);
            descriptor.Permissions.Add(Permissions.ResponseTypes.Code);
            if (client.RequirePushedAuthorizationRequests)
                descriptor.Requirements.Add(Requirements.Features.PushedAuthorizationRequests);
        }
        else if (client.RequirePushedAuthorizationRequests)
            throw new InvalidClientException("require_pushed_authorization_requests", "pushed authorization requests are for clients with authorization_code");
        if (isPublic)
            descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
        if (client.RequireDPoP)
            descriptor.Requirements.Add(Connect.DPoP.Requirement);
        if (client.RequireSignedRequestObject)
        {
            if (!client.GrantTypes.Contains(GrantTypes.AuthorizationCode))
                throw new InvalidClientException("require_signed_request_object", "signed authorization requests are for clients with authorization_code");
            if (keys is null)
                throw new InvalidClientException("require_signed_request_object", "a client that signs its authorization requests needs its keys, in jwks or at jwks_uri");
            descriptor.Requirements.Add(Connect.RequestObjects.Requirement);
        }

        if (client.MinimumAcr is { } minimumAcr)
        {
            if (Connect.AuthenticationContext.LevelOf(minimumAcr) <= 0)
                throw new InvalidClientException("minimum_acr",
                    $"minimum_acr must be {Connect.AuthenticationContext.MultiFactor} or {Connect.AuthenticationContext.PhishingResistant}");
            descriptor.Properties[Connect.AuthenticationContext.Property] = System.Text.Json.JsonSerializer.SerializeToElement(minimumAcr);
        }

        foreach (var uri in client.RedirectUris)
            descriptor.RedirectUris.Add(AbsoluteUri("redirect_uris", uri));
        foreach (var uri in client.PostLogoutRedirectUris)
            descriptor.PostLogoutRedirectUris.Add(AbsoluteUri("post_logout_redirect_uris", uri));
        foreach (var scope in client.Scopes.Where(s => s != Scopes.OpenId))
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        if (client.ScimOrganization is { } domain)
        {
            if (!client.Scopes.Contains(Scim.ScimApi.Scope))
                throw new InvalidClientException("scim_organization", "an organization applies to a client with the scope scim");
            if (Organizations.Membership.OrganizationDomain("x@" + domain) != domain || Uri.CheckHostName(domain) != UriHostNameType.Dns)
                throw new InvalidClientException("scim_organization", $"'{domain}' is not an organization's email domain (lower case, not free-mail)");
            descriptor.Properties[Scim.ScimApi.OrganizationProperty] = System.Text.Json.JsonSerializer.SerializeToElement(domain);
        }
        if (client.BackchannelLogoutUri is { } logoutUri)
        {
            var uri = AbsoluteUri("backchannel_logout_uri", logoutUri);
            if (uri.Scheme is not ("https" or "http"))
                throw new InvalidClientException("backchannel_logout_uri", $"'{logoutUri}' is not an http(s) URI");
            descriptor.Properties[Sessions.BackchannelLogout.Property] = System.Text.Json.JsonSerializer.SerializeToElement(uri.AbsoluteUri);
        }
        // OpenIddict reads these settings when it issues the client's tokens; a lifetime set on a token's principal
        // (remember me at /api/v1/auth, a token exchange's cap) still wins.
        if (client.AccessTokenLifetime is { } access)
            descriptor.Settings[Settings.TokenLifetimes.AccessToken] = Lifetime("access_token_lifetime", access, TimeSpan.FromMinutes(1), TimeSpan.FromDays(1));
        if (client.RefreshTokenLifetime is { } refresh)
        {
            if (!client.GrantTypes.Contains(GrantTypes.RefreshToken))
                throw new InvalidClientException("refresh_token_lifetime", "a refresh token lifetime is for clients with the refresh_token grant");
            descriptor.Settings[Settings.TokenLifetimes.RefreshToken] = Lifetime("refresh_token_lifetime", refresh, TimeSpan.FromMinutes(5), TimeSpan.FromDays(365));
        }
        if (client.FrontchannelLogoutUri is { } frontchannel)
        {
            var uri = AbsoluteUri("frontchannel_logout_uri", frontchannel);
            // Front-Channel Logout 1.0 §2: the app's own site, which the user's browser already trusts it with.
            if (uri.Scheme is not ("https" or "http") || !descriptor.RedirectUris.Any(r => Uri.Compare(r, uri, UriComponents.SchemeAndServer,
                    UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0))
                throw new InvalidClientException("frontchannel_logout_uri",
                    $"'{frontchannel}' must be http(s) on the scheme, host and port of one of the client's redirect URIs");
            descriptor.Properties[Sessions.FrontchannelLogout.Property] = System.Text.Json.JsonSerializer.SerializeToElement(uri.AbsoluteUri);
            descriptor.Properties[Sessions.FrontchannelLogout.SessionRequiredProperty] =
                System.Text.Json.JsonSerializer.SerializeToElement(client.FrontchannelLogoutSessionRequired);
        }
        return descriptor;
    }

    /// <summary>
    /// A client's keys for private_key_jwt: public RSA (2048 bits or more) or EC (P-256, P-384, P-521) signing keys, at
    /// most ten (room for a rollover). A private part is refused rather than dropped: a client that sent its private
    /// key must make a new one. <paramref name="field"/> names where the keys came from (jwks, or the set at jwks_uri).
    /// </summary>
    public static JsonWebKeySet PublicSigningKeys(string json, string field = "jwks")
    {
        JsonWebKeySet set;
        try
        {
            set = new JsonWebKeySet(json);
        }
        catch (Exception e) when (e is ArgumentException or System.Text.Json.JsonException)
        {
            throw new InvalidClientException(field, $"{field} is not a JSON Web Key Set ({{\"keys\": [...]}})");
        }
        if (set.Keys.Count is 0 or > 10)
            throw new InvalidClientException(field, $"{field} must hold 1 to 10 keys");
        foreach (var key in set.Keys)
        {
            var name = key.Kid ?? key.Kty ?? "without kid";
            if (key.Use is { Length: > 0 } use && use != JsonWebKeyUseNames.Sig)
                throw new InvalidClientException(field, $"key '{name}' is for '{use}', not for signing (sig)");
            if (key.HasPrivateKey || key.D is not null || key.K is not null)
                throw new InvalidClientException(field, $"key '{name}' has private parts: send public keys only, and make a new key pair, since this one has left the client");
            var usable = key.Kty switch
            {
                JsonWebAlgorithmsKeyTypes.RSA => key.E is not null && ModulusBits(key.N) >= 2048,
                JsonWebAlgorithmsKeyTypes.EllipticCurve => key.Crv is "P-256" or "P-384" or "P-521" && key.X is not null && key.Y is not null,
                _ => false,
            };
            if (!usable)
                throw new InvalidClientException(field, $"key '{name}' is not an RSA key of 2048 bits or more, nor an EC key on P-256, P-384 or P-521");
        }
        return set;
    }

    static int ModulusBits(string? n)
    {
        try
        {
            return n is null ? 0 : Base64UrlEncoder.DecodeBytes(n).SkipWhile(b => b == 0).Count() * 8;
        }
        catch (FormatException)
        {
            return 0;
        }
    }

    /// <summary>The client's lifetimes as OpenIddict stores them (TimeSpan's invariant text), or null for the server's.</summary>
    public static (TimeSpan? Access, TimeSpan? Refresh) LifetimesOf(System.Collections.Immutable.ImmutableDictionary<string, string> settings)
    {
        static TimeSpan? Read(System.Collections.Immutable.ImmutableDictionary<string, string> settings, string key) =>
            settings.TryGetValue(key, out var text) && TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;
        return (Read(settings, Settings.TokenLifetimes.AccessToken), Read(settings, Settings.TokenLifetimes.RefreshToken));
    }

    static string Lifetime(string field, TimeSpan value, TimeSpan least, TimeSpan most) =>
        value >= least && value <= most
            ? value.ToString("c", System.Globalization.CultureInfo.InvariantCulture)
            : throw new InvalidClientException(field, $"{value.TotalSeconds:0} seconds is not between {least.TotalSeconds:0} and {most.TotalSeconds:0}");

    static Uri AbsoluteUri(string field, string uri) =>
        // On Unix "/path" parses as an absolute file URI: require a real scheme (https, or a native app's own).
        Uri.TryCreate(uri, UriKind.Absolute, out var result) && !result.IsFile && !result.IsUnc && string.IsNullOrEmpty(result.Fragment)
            ? result
            : throw new InvalidClientException(field, $"'{uri}' is not an absolute URI without a fragment");
}
