using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Server.Connect;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Roles;
using RolePermissions = Identity.Server.Roles.Permissions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

/// <summary>
/// /api/v1/clients: OAuth clients registered at run time, as Keycloak's and Auth0's admin APIs do. Secrets are made
/// by the server (256 random bits), shown once, and stored as OpenIddict's PBKDF2 hash. Clients from configuration
/// (and the auth API's own) are shown but read-only: the next start would put their configuration back.
/// </summary>
public static partial class ClientsApi
{
    public sealed record ClientRequest(string? ClientId, string? DisplayName, bool? Public, List<string>? GrantTypes, List<string>? RedirectUris,
        List<string>? PostLogoutRedirectUris, List<string>? Scopes, string? ConsentType, string? BackchannelLogoutUri, string? ScimOrganization,
        bool? RequirePushedAuthorizationRequests = null, string? TokenEndpointAuthMethod = null, JsonElement? Jwks = null, string? JwksUri = null,
        // Named by hand: the snake_case policy would write require_d_po_p.
        [property: System.Text.Json.Serialization.JsonPropertyName("require_dpop")] bool? RequireDPoP = null,
        string? FrontchannelLogoutUri = null, bool? FrontchannelLogoutSessionRequired = null, long? AccessTokenLifetime = null, long? RefreshTokenLifetime = null,
        bool? RequireSignedRequestObject = null, string? MinimumAcr = null);

    public sealed record ClientView(string ClientId, string DisplayName, string ClientType, string ConsentType, IReadOnlyList<string> GrantTypes,
        IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris, IReadOnlyList<string> Scopes, string? BackchannelLogoutUri,
        string? ScimOrganization, bool RequirePushedAuthorizationRequests, bool Configured, string TokenEndpointAuthMethod, JsonElement? Jwks,
        string? JwksUri, [property: System.Text.Json.Serialization.JsonPropertyName("require_dpop")] bool RequireDPoP,
        string? FrontchannelLogoutUri, bool FrontchannelLogoutSessionRequired, long? AccessTokenLifetime, long? RefreshTokenLifetime,
        DateTimeOffset? PreviousSecretExpiresAt, bool RequireSignedRequestObject, string? MinimumAcr);

    /// <summary>The client, and its secret when one was just made: the only time it is ever shown.</summary>
    public sealed record ClientResponse(ClientView Client, string? ClientSecret = null);

    public sealed record ClientList(IReadOnlyList<ClientView> Clients);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{2,99}$")]
    private static partial Regex ClientIdFormat();

    public static IEndpointRouteBuilder MapClientsApi(this IEndpointRouteBuilder app)
    {
        var clients = app.MapGroup("/api/v1/clients").WithTags("Clients").RequireAuthorization(ServerApi.Policy);
        clients.MapGet("/", List).RequirePermission(RolePermissions.ClientsRead).WithSummary("List OAuth clients");
        clients.MapGet("/{clientId}", Get).RequirePermission(RolePermissions.ClientsRead).WithSummary("An OAuth client");
        clients.MapPost("/", Create).RequirePermission(RolePermissions.ClientsWrite)
            .WithSummary("Register a client; a confidential client's secret is in the answer, and only there");
        clients.MapPut("/{clientId}", Update).RequirePermission(RolePermissions.ClientsWrite)
            .WithSummary("Change a client's name, grants, redirect URIs, scopes or consent; its secret stays");
        clients.MapPost("/{clientId}/secret", RotateSecret).RequirePermission(RolePermissions.ClientsWrite)
            .WithSummary("Replace a confidential client's secret; the old one stops working at once");
        clients.MapDelete("/{clientId}", Delete).RequirePermission(RolePermissions.ClientsWrite)
            .WithSummary("Delete a client with its authorizations and tokens");
        return app;
    }

    static async Task<IResult> List(IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed)
    {
        var views = new List<ClientView>();
        await foreach (var application in applications.ListAsync())
            views.Add(await ViewAsync(applications, seed, application));
        return Results.Ok(new ClientList([.. views.OrderBy(v => v.ClientId, StringComparer.Ordinal)]));
    }

    static async Task<IResult> Get(HttpContext http, string clientId, IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed) =>
        await applications.FindByClientIdAsync(clientId) is { } application
            ? Results.Ok(new ClientResponse(await ViewAsync(applications, seed, application)))
            : ApiErrors.NotFound(http);

    static async Task<IResult> Create(HttpContext http, ClientRequest body, IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed,
        ScopeResources scopes, SecurityEvents events, RemoteKeys remoteKeys)
    {
        var clientId = body.ClientId?.Trim() ?? "client-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        if (!ClientIdFormat().IsMatch(clientId))
            return Invalid(http, "client_id", "client_id must be 3 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit.");
        if (await applications.FindByClientIdAsync(clientId) is not null)
            return ApiErrors.Result(http, StatusCodes.Status409Conflict, "CONFLICT", $"There is already a client '{clientId}'.", new { field = "client_id" });

        if (AuthMethodProblem(body) is { } methodProblem)
            return Invalid(http, methodProblem.Field, methodProblem.Problem);
        (body, var keysProblem) = await WithRemoteKeysAsync(remoteKeys, body, http.RequestAborted);
        if (keysProblem is not null)
            return Invalid(http, "jwks_uri", keysProblem);
        var secret = body.Public is true || body.TokenEndpointAuthMethod is ClientAuthenticationMethods.None or ClientAuthenticationMethods.PrivateKeyJwt
            ? null : NewSecret();
        var (descriptor, field, problem) = Validate(clientId, secret, body, scopes);
        if (descriptor is null)
            return Invalid(http, field!, problem!);
        await events.RaiseAsync(EventTypes.ClientCreated, null, new { client_id = clientId, client_type = descriptor.ClientType });
        object application;
        try
        {
            application = await applications.CreateAsync(descriptor);
        }
        catch (OpenIddictExceptions.ValidationException refused)
        {
            return Refused(http, refused);
        }
        return Results.Created($"/api/v1/clients/{Uri.EscapeDataString(clientId)}",
            new ClientResponse(await ViewAsync(applications, seed, application), secret));
    }

    static async Task<IResult> Update(HttpContext http, string clientId, ClientRequest body, IOpenIddictApplicationManager applications,
        IOptions<SeedOptions> seed, ScopeResources scopes, SecurityEvents events, RemoteKeys remoteKeys)
    {
        var (application, refusal) = await FindChangeableAsync(http, clientId, applications, seed);
        if (application is null)
            return refusal!;
        var current = await ViewAsync(applications, seed, application);
        var confidential = current.ClientType == ClientTypes.Confidential;
        if (body.Public is { } isPublic && isPublic == confidential)
            return Invalid(http, "public", "A client cannot change between public and confidential: register a new one.");
        var keys = current.TokenEndpointAuthMethod == ClientAuthenticationMethods.PrivateKeyJwt;
        if (body.TokenEndpointAuthMethod is { } method && (method == ClientAuthenticationMethods.PrivateKeyJwt) != keys)
            return Invalid(http, "token_endpoint_auth_method", "A client cannot change between a secret and its own keys: register a new one.");
        if ((body.Jwks is not null || body.JwksUri is not null) && !keys)
            return Invalid(http, body.Jwks is not null ? "jwks" : "jwks_uri",
                "jwks and jwks_uri are for clients registered with token_endpoint_auth_method private_key_jwt.");
        if (body.Jwks is not null && body.JwksUri is not null)
            return Invalid(http, "jwks_uri", "Give the client's keys in jwks or at jwks_uri, not both.");

        // Fields left out keep their value; an empty logout URI removes it, and a refresh token lifetime goes with the
        // grant. A stand-in secret makes the description confidential; the stored hash then takes its place, and
        // OpenIddict, finding the secret unchanged, keeps it as it is.
        var grants = body.GrantTypes ?? [.. current.GrantTypes];
        var merged = new ClientRequest(clientId, body.DisplayName ?? current.DisplayName, !confidential, grants,
            body.RedirectUris ?? [.. current.RedirectUris], body.PostLogoutRedirectUris ?? [.. current.PostLogoutRedirectUris],
            body.Scopes ?? [.. current.Scopes], body.ConsentType ?? current.ConsentType, Cleared(body.BackchannelLogoutUri, current.BackchannelLogoutUri),
            body.ScimOrganization ?? current.ScimOrganization, body.RequirePushedAuthorizationRequests ?? current.RequirePushedAuthorizationRequests,
            // New keys in jwks replace a jwks_uri, and a new jwks_uri replaces keys given in jwks; else what was stays.
            current.TokenEndpointAuthMethod, body.JwksUri is not null ? null : body.Jwks ?? current.Jwks,
            body.Jwks is not null ? null : body.JwksUri ?? current.JwksUri, body.RequireDPoP ?? current.RequireDPoP,
            Cleared(body.FrontchannelLogoutUri, current.FrontchannelLogoutUri), body.FrontchannelLogoutSessionRequired ?? current.FrontchannelLogoutSessionRequired,
            body.AccessTokenLifetime ?? current.AccessTokenLifetime,
            body.RefreshTokenLifetime ?? (grants.Contains(GrantTypes.RefreshToken) ? current.RefreshTokenLifetime : null),
            body.RequireSignedRequestObject ?? current.RequireSignedRequestObject, Cleared(body.MinimumAcr, current.MinimumAcr));
        (merged, var keysProblem) = await WithRemoteKeysAsync(remoteKeys, merged, http.RequestAborted);
        if (keysProblem is not null)
            return Invalid(http, "jwks_uri", keysProblem);
        var (descriptor, field, problem) = Validate(clientId, confidential && !keys ? "kept" : null, merged, scopes);
        if (descriptor is null)
            return Invalid(http, field!, problem!);
        var stored = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(stored, application);
        descriptor.ClientSecret = stored.ClientSecret;
        DynamicRegistration.KeepRegistration(stored, descriptor);
        PreviousSecret.Keep(stored, descriptor);
        await events.RaiseAsync(EventTypes.ClientUpdated, null, new { client_id = clientId });
        try
        {
            await applications.UpdateAsync(application, descriptor);
        }
        catch (OpenIddictExceptions.ValidationException refused)
        {
            return Refused(http, refused);
        }
        return Results.Ok(new ClientResponse(await ViewAsync(applications, seed, application)));
    }

    /// <summary>previous_secret_lifetime: how many seconds the replaced secret goes on working (0, the default: none).</summary>
    public sealed record RotateSecretRequest(long? PreviousSecretLifetime);

    static async Task<IResult> RotateSecret(HttpContext http, string clientId, IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed,
        SecurityEvents events, TimeProvider time, RotateSecretRequest? body)
    {
        var grace = body?.PreviousSecretLifetime ?? 0;
        if (grace < 0 || grace > PreviousSecret.LongestGrace.TotalSeconds)
            return Invalid(http, "previous_secret_lifetime", $"The previous secret may go on working 0 to {PreviousSecret.LongestGrace.TotalSeconds:0} seconds.");
        var (application, refusal) = await FindChangeableAsync(http, clientId, applications, seed);
        if (application is null)
            return refusal!;
        if (!await applications.HasClientTypeAsync(application, ClientTypes.Confidential))
            return Invalid(http, "client_id", "A public client has no secret.");
        if (await applications.GetJsonWebKeySetAsync(application) is not null)
            return Invalid(http, "client_id", "This client signs with its own keys (private_key_jwt) and has no secret: change its jwks instead.");
        var descriptor = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(descriptor, application);
        // The descriptor holds the stored hash of the secret being replaced, which is what a grace period keeps.
        var expires = time.GetUtcNow() + TimeSpan.FromSeconds(grace);
        PreviousSecret.Set(descriptor, grace > 0 ? descriptor.ClientSecret : null, expires);
        var secret = NewSecret();
        descriptor.ClientSecret = secret;
        await events.RaiseAsync(EventTypes.ClientSecretRotated, null, new { client_id = clientId, previous_secret_expires_at = grace > 0 ? expires : (DateTimeOffset?)null });
        await applications.UpdateAsync(application, descriptor);
        return Results.Ok(new ClientResponse(await ViewAsync(applications, seed, application), secret));
    }

    static async Task<IResult> Delete(HttpContext http, string clientId, IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed,
        SecurityEvents events)
    {
        var (application, refusal) = await FindChangeableAsync(http, clientId, applications, seed);
        if (application is null)
            return refusal!;
        await events.RaiseAsync(EventTypes.ClientDeleted, null, new { client_id = clientId });
        // OpenIddict's store deletes the client's authorizations and tokens with it: nothing it was given still works.
        await applications.DeleteAsync(application);
        return Results.NoContent();
    }

    /// <summary>A 256-bit random secret, base64url: nothing to guess, and too long to be worth a dictionary.</summary>
    internal static string NewSecret() => WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32));

    static async Task<(object? Application, IResult? Refusal)> FindChangeableAsync(HttpContext http, string clientId,
        IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed)
    {
        var application = await applications.FindByClientIdAsync(clientId);
        if (application is null)
            return (null, ApiErrors.NotFound(http));
        return IsConfigured(seed, clientId)
            ? (null, ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN",
                "This client comes from the server's configuration: change it there.", new { reason = "configured" }))
            : (application, null);
    }

    static bool IsConfigured(IOptions<SeedOptions> seed, string clientId) =>
        clientId == Auth.AuthFacade.ClientId || seed.Value.Clients.Any(c => c.ClientId == clientId);

    /// <summary>
    /// The registration rules of <see cref="ClientRegistration"/>, and stricter ones for clients registered at run
    /// time, which are usually third parties (RFC 9700): no password grant, known scopes only, and redirect URIs
    /// over https, to a loopback address (native apps, RFC 8252) or to an app's own scheme; the same for the
    /// back-channel logout URI, which must also be http(s). The client's description, or the field at fault and why:
    /// this API and dynamic registration (RFC 7591) answer each in their own error shape.
    /// </summary>
    internal static (OpenIddictApplicationDescriptor? Descriptor, string? Field, string? Problem) Validate(string clientId, string? secret,
        ClientRequest body, ScopeResources scopes)
    {
        if (FreeText.Problem(body.DisplayName, "display name", 256) is { } nameProblem)
            return (null, "display_name", nameProblem);
        var grants = body.GrantTypes ?? [];
        if (grants.Count == 0)
            return (null, "grant_types", "At least one grant type is required.");
        if (grants.Contains(GrantTypes.Password))
            return (null, "grant_types",
                "The password grant is for first-party apps in the server's configuration (RFC 9700 §2.4); use authorization_code.");
        string[] known = [Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.Roles, Scopes.OfflineAccess, .. scopes.Names];
        if ((body.Scopes ?? []).FirstOrDefault(s => !known.Contains(s)) is { } unknown)
            return (null, "scopes", $"There is no scope '{unknown}'.");
        foreach (var (field, uris) in new[]
                 {
                     ("redirect_uris", body.RedirectUris), ("post_logout_redirect_uris", body.PostLogoutRedirectUris),
                     ("backchannel_logout_uri", body.BackchannelLogoutUri is null ? null : new List<string> { body.BackchannelLogoutUri }),
                     ("frontchannel_logout_uri", body.FrontchannelLogoutUri is null ? null : new List<string> { body.FrontchannelLogoutUri }),
                 })
            if ((uris ?? []).FirstOrDefault(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) && !IsSafeRedirect(uri)) is { } unsafeUri)
                return (null, field, $"'{unsafeUri}' must use https, a loopback address or an app's own scheme.");
        try
        {
            var descriptor = ClientRegistration.Describe(new ClientOptions
            {
                ClientId = clientId, ClientSecret = secret, DisplayName = body.DisplayName, GrantTypes = grants,
                RedirectUris = body.RedirectUris ?? [], PostLogoutRedirectUris = body.PostLogoutRedirectUris ?? [], Scopes = body.Scopes ?? [],
                ConsentType = body.ConsentType ?? ConsentTypes.Explicit, BackchannelLogoutUri = body.BackchannelLogoutUri,
                ScimOrganization = body.ScimOrganization, RequirePushedAuthorizationRequests = body.RequirePushedAuthorizationRequests == true,
                RequireDPoP = body.RequireDPoP == true, RequireSignedRequestObject = body.RequireSignedRequestObject == true, MinimumAcr = body.MinimumAcr,
                FrontchannelLogoutUri = body.FrontchannelLogoutUri, FrontchannelLogoutSessionRequired = body.FrontchannelLogoutSessionRequired ?? true,
                AccessTokenLifetime = Seconds(body.AccessTokenLifetime), RefreshTokenLifetime = Seconds(body.RefreshTokenLifetime),
                Jwks = body.Jwks is { ValueKind: not JsonValueKind.Null } jwks ? jwks.GetRawText() : null,
            });
            // The keys fetched from it are stored as the client's last known set (RemoteKeys).
            if (body.JwksUri is { } jwksUri)
                descriptor.Properties[RemoteKeys.Property] = JsonSerializer.SerializeToElement(jwksUri);
            return (descriptor, null, null);
        }
        catch (InvalidClientException invalid)
        {
            return (null, invalid.Field, invalid.Message + ".");
        }
    }

    /// <summary>
    /// How a new client proves who it is, as RFC 7591 names it: none (public), client_secret_basic or client_secret_post
    /// (a server-made secret; both are accepted at the endpoints), or private_key_jwt with its public keys in jwks.
    /// </summary>
    /// <summary>
    /// A request that names a jwks_uri and no keys gets the keys fetched from it now (<see cref="RemoteKeys"/>), so that
    /// a URL serving no usable key set is refused at registration; or the reason it cannot be used.
    /// </summary>
    static async Task<(ClientRequest Body, string? Problem)> WithRemoteKeysAsync(RemoteKeys remote, ClientRequest body, CancellationToken cancellationToken)
    {
        if (body.JwksUri is not { } uri || body.Jwks is not null)
            return (body, null);
        try
        {
            return (body with { Jwks = KeysView(await remote.FetchAsync(uri, cancellationToken)) }, null);
        }
        catch (InvalidClientException invalid)
        {
            return (body, invalid.Message + ".");
        }
    }

    static (string Field, string Problem)? AuthMethodProblem(ClientRequest body) => body.TokenEndpointAuthMethod switch
    {
        _ when body.Jwks is not null && body.JwksUri is not null => ("jwks_uri", "Give the client's keys in jwks or at jwks_uri, not both."),
        null or ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost when body.Jwks is not null || body.JwksUri is not null =>
            (body.Jwks is not null ? "jwks" : "jwks_uri", "jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt."),
        null => null,
        ClientAuthenticationMethods.None when body.Public is not false => null,
        ClientAuthenticationMethods.None => ("token_endpoint_auth_method", "none is for public clients."),
        ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost or ClientAuthenticationMethods.PrivateKeyJwt
            when body.Public is true => ("token_endpoint_auth_method", "A public client has no credentials: its method is none."),
        ClientAuthenticationMethods.PrivateKeyJwt when body.Jwks is not { ValueKind: JsonValueKind.Object } && body.JwksUri is null =>
            ("jwks", "private_key_jwt needs the client's public keys: a JSON Web Key Set in jwks, or where to fetch it in jwks_uri."),
        ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost or ClientAuthenticationMethods.PrivateKeyJwt => null,
        _ => ("token_endpoint_auth_method", "token_endpoint_auth_method must be none (public), client_secret_basic, client_secret_post or private_key_jwt."),
    };

    /// <summary>Only the public parameters of a client's keys are kept; they are shown as the client registered them.</summary>
    internal static JsonElement? KeysView(Microsoft.IdentityModel.Tokens.JsonWebKeySet? set) => set is null ? null : JsonSerializer.SerializeToElement(new
    {
        keys = set.Keys.Select(k => new Dictionary<string, string?>
        {
            ["kty"] = k.Kty, ["kid"] = k.Kid, ["use"] = k.Use, ["alg"] = k.Alg, ["n"] = k.N, ["e"] = k.E, ["crv"] = k.Crv, ["x"] = k.X, ["y"] = k.Y,
        }.Where(p => p.Value is not null).ToDictionary()),
    });

    static bool IsSafeRedirect(Uri uri) => uri.Scheme switch
    {
        "https" => true,
        "http" => uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip)),
        "javascript" or "data" or "file" or "vbscript" => false,
        // A native app's private-use scheme (RFC 8252 §7.1), reverse-DNS style: com.example.app:/callback.
        var scheme => scheme.Contains('.'),
    };

    /// <summary>OpenIddict's own checks, past ours: still the client's mistake, never a 500.</summary>
    static IResult Refused(HttpContext http, OpenIddictExceptions.ValidationException refused) =>
        ApiErrors.Result(http, StatusCodes.Status400BadRequest, "INVALID_REQUEST", "The client cannot be saved as described.",
            new { reasons = refused.Results.Select(r => r.ErrorMessage) });

    static IResult Invalid(HttpContext http, string field, string message) =>
        ApiErrors.Result(http, StatusCodes.Status400BadRequest, "INVALID_REQUEST", message, new { field });

    internal static async Task<ClientView> ViewAsync(IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed, object application)
    {
        var permissions = await applications.GetPermissionsAsync(application);
        var clientId = (await applications.GetClientIdAsync(application))!;
        var keys = await applications.GetJsonWebKeySetAsync(application);
        var clientType = await applications.GetClientTypeAsync(application) ?? ClientTypes.Public;
        var frontchannel = await Sessions.FrontchannelLogout.OfAsync(applications, application);
        var lifetimes = ClientRegistration.LifetimesOf(await applications.GetSettingsAsync(application));
        return new ClientView(
            clientId,
            await applications.GetDisplayNameAsync(application) ?? clientId,
            clientType,
            await applications.GetConsentTypeAsync(application) ?? ConsentTypes.Explicit,
            [.. ClientRegistration.GrantTypesOf(permissions)],
            [.. (await applications.GetRedirectUrisAsync(application)).Order(StringComparer.Ordinal)],
            [.. (await applications.GetPostLogoutRedirectUrisAsync(application)).Order(StringComparer.Ordinal)],
            [.. permissions.Where(p => p.StartsWith(OpenIddictConstants.Permissions.Prefixes.Scope, StringComparison.Ordinal))
                .Select(p => p[OpenIddictConstants.Permissions.Prefixes.Scope.Length..]).Order(StringComparer.Ordinal)],
            await Sessions.BackchannelLogout.UriOfAsync(applications, application),
            await Scim.ScimApi.OrganizationOfAsync(applications, application),
            await applications.HasRequirementAsync(application, OpenIddictConstants.Requirements.Features.PushedAuthorizationRequests),
            IsConfigured(seed, clientId),
            AuthMethodOf(clientType, ownKeys: keys is not null),
            KeysView(keys),
            await RemoteKeys.UriOfAsync(applications, application),
            await applications.HasRequirementAsync(application, Connect.DPoP.Requirement),
            frontchannel?.Uri, frontchannel?.SessionRequired ?? true, (long?)lifetimes.Access?.TotalSeconds, (long?)lifetimes.Refresh?.TotalSeconds,
            (await PreviousSecret.OfAsync(applications, application))?.ExpiresAt,
            await applications.HasRequirementAsync(application, Connect.RequestObjects.Requirement),
            await Connect.AuthenticationContext.MinimumAcrOfAsync(applications, application));
    }

    static string? Cleared(string? given, string? current) => given is null ? current : given.Length == 0 ? null : given;

    // Seconds in the API, as Auth0's and Keycloak's admin APIs give lifetimes; out of range is refused by ClientRegistration.
    static TimeSpan? Seconds(long? seconds) => seconds is { } value ? TimeSpan.FromSeconds(Math.Clamp(value, -1, (long)TimeSpan.FromDays(3650).TotalSeconds)) : null;

    /// <summary>
    /// How a stored client authenticates, as RFC 7591 names it: a public one with nothing, a confidential one with its
    /// own keys or a secret. Dynamic registration checks a replacement against the same answer.
    /// </summary>
    internal static string AuthMethodOf(string clientType, bool ownKeys) =>
        clientType == ClientTypes.Public ? ClientAuthenticationMethods.None
        : ownKeys ? ClientAuthenticationMethods.PrivateKeyJwt : ClientAuthenticationMethods.ClientSecretBasic;
}
