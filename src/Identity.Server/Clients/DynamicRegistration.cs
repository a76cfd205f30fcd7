using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Identity.Server.Connect;
using Identity.Server.Events;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

public sealed class DynamicRegistrationOptions
{
    public const string Section = "Identity:DynamicRegistration";

    /// <summary>Off unless the operator turns it on: anyone who can reach the endpoint can then register an app.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// When set, registration needs it as a bearer token (RFC 7591's initial access token), so only those it was
    /// given can register; unset, registration is open, as MCP clients and other self-registering apps expect.
    /// </summary>
    public string? InitialAccessToken { get; set; }

    /// <summary>The scopes a registered app may ask for; the server's own API (identity) is not among them by default.</summary>
    public List<string> Scopes { get; set; } = [OpenIddictConstants.Scopes.OpenId, OpenIddictConstants.Scopes.Profile,
        OpenIddictConstants.Scopes.Email, OpenIddictConstants.Scopes.OfflineAccess];
}

/// <summary>
/// OAuth 2.0 Dynamic Client Registration (RFC 7591) at /connect/register, for apps that register themselves, such as
/// MCP clients: the code flow only (with refresh tokens), redirect URIs held to the clients API's RFC 9700 rules,
/// scopes from an allow-list, explicit consent always, and the consent page says the app registered itself. Public
/// apps (token_endpoint_auth_method none) must use PKCE; confidential ones get a server-made secret, shown once, or
/// register their public keys (private_key_jwt with jwks, or jwks_uri: <see cref="RemoteKeys"/>).
/// Registrations are audited (client.created) and count against the authentication rate limit per address.
/// <para>
/// Each registration also gets its own configuration endpoint (RFC 7592), /connect/register/{client_id}, behind a
/// registration access token: the app reads (GET), replaces (PUT) or deletes (DELETE) its registration there. The token
/// is stored as its SHA-256 only, so each answer carries a new one and the one used stops working, as Keycloak rotates
/// it. A wrong token and an unknown client get the same 401. Administrators manage these clients through
/// /api/v1/clients as any other.
/// </para>
/// </summary>
public static class DynamicRegistration
{
    public const string Path = "/connect/register";
    const int MaxBodyBytes = 16 * 1024;

    /// <summary>Set on a self-registered client, so that its consent page can say nobody vetted it.</summary>
    public const string Property = "dynamically_registered";

    /// <summary>The SHA-256 (hex) of the client's current registration access token; the token itself is not kept.</summary>
    const string TokenProperty = "registration_access_token_sha256";

    /// <summary>How the app said it authenticates (client_secret_basic or client_secret_post), and when it registered.</summary>
    const string MethodProperty = "token_endpoint_auth_method", IssuedAtProperty = "client_id_issued_at";

    /// <summary>
    /// What this endpoint keeps on a client beside its metadata, carried over when an administrator changes the client
    /// through /api/v1/clients: it stays marked as self-registered, and its app can still manage it.
    /// </summary>
    internal static void KeepRegistration(OpenIddictApplicationDescriptor stored, OpenIddictApplicationDescriptor updated)
    {
        foreach (var name in (string[])[Property, TokenProperty, MethodProperty, IssuedAtProperty])
            if (stored.Properties.TryGetValue(name, out var value))
                updated.Properties[name] = value;
    }

    public static WebApplicationBuilder AddDynamicRegistration(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DynamicRegistrationOptions>().BindConfiguration(DynamicRegistrationOptions.Section);
        return builder;
    }

    public static IEndpointRouteBuilder MapDynamicRegistration(this IEndpointRouteBuilder app)
    {
        if (!app.ServiceProvider.GetRequiredService<IOptions<DynamicRegistrationOptions>>().Value.Enabled)
            return app;
        app.MapPost(Path, Register).ExcludeFromDescription();
        app.MapGet(Path + "/{clientId}", Read).ExcludeFromDescription();
        app.MapPut(Path + "/{clientId}", Replace).ExcludeFromDescription();
        app.MapDelete(Path + "/{clientId}", Delete).ExcludeFromDescription();
        return app;
    }

    /// <summary>What an app says about itself at registration, or in full again when it replaces its registration.</summary>
    sealed record Metadata(string? Name, string Method, List<string> Scope, List<string> Redirects, List<string> LogoutRedirects,
        List<string> Grants, JsonElement? Jwks, string? JwksUri, bool DPoPBound, JsonElement Raw, Logouts Logouts, bool SignedRequests);

    /// <summary>Back-Channel and Front-Channel Logout 1.0 §2.2 and §2: where the app hears of its users' sign-outs.</summary>
    sealed record Logouts(string? Backchannel, string? Frontchannel, bool FrontchannelSessionRequired);

    static async Task<IResult> Register(HttpContext http, IOptions<DynamicRegistrationOptions> options, IOpenIddictApplicationManager applications,
        ScopeResources scopes, SecurityEvents events, TimeProvider time, RemoteKeys remoteKeys)
    {
        if (options.Value.InitialAccessToken is { } expected && !Matches(http.Request.Headers.Authorization.ToString(), "Bearer " + expected))
            return Unauthorized(http, "A valid initial access token is required to register.");
        var (metadata, refusal) = await ReadAsync(http, options.Value, remoteKeys);
        if (metadata is null)
            return refusal!;

        var clientId = "dyn-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var secret = metadata.Method is ClientAuthenticationMethods.None or ClientAuthenticationMethods.PrivateKeyJwt ? null : ClientsApi.NewSecret();
        var (descriptor, problem) = Describe(clientId, secret, metadata, scopes);
        if (descriptor is null)
            return problem!;
        var issuedAt = time.GetUtcNow().ToUnixTimeSeconds();
        descriptor.Properties[Property] = JsonSerializer.SerializeToElement(true);
        descriptor.Properties[MethodProperty] = JsonSerializer.SerializeToElement(metadata.Method);
        descriptor.Properties[IssuedAtProperty] = JsonSerializer.SerializeToElement(issuedAt);
        var token = NewToken(descriptor);

        await events.RaiseAsync(EventTypes.ClientCreated, null, new { client_id = clientId, client_type = descriptor.ClientType, source = "dynamic_registration" });
        try
        {
            await applications.CreateAsync(descriptor);
        }
        catch (OpenIddictExceptions.ValidationException invalid)
        {
            return Refuse("invalid_client_metadata", string.Join(" ", invalid.Results.Select(r => r.ErrorMessage)));
        }
        // RFC 7591 §3.2.1: the metadata as registered, with the identifier (and secret) the server made.
        var answer = Information(http, clientId, metadata.Name, metadata.Redirects, metadata.LogoutRedirects, ClientRegistration.GrantTypesOf(descriptor.Permissions),
            metadata.Method, metadata.Jwks, metadata.JwksUri, metadata.Scope, token, metadata.DPoPBound, metadata.Logouts, metadata.SignedRequests);
        answer["client_id_issued_at"] = issuedAt;
        if (secret is not null)
        {
            answer["client_secret"] = secret;
            answer["client_secret_expires_at"] = 0;
        }
        return Results.Json(answer, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>RFC 7592 §2.1: the registration as it stands, with the next registration access token.</summary>
    static async Task<IResult> Read(HttpContext http, string clientId, IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed)
    {
        var (application, refusal) = await AuthorizeAsync(http, clientId, applications);
        if (application is null)
            return refusal!;
        var descriptor = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(descriptor, application);
        var token = NewToken(descriptor);
        await applications.UpdateAsync(application, descriptor);
        return Results.Json(await InformationAsync(http, applications, seed, application, token));
    }

    /// <summary>
    /// RFC 7592 §2.2: the app sends its whole registration again, under the same rules as registering; what it leaves
    /// out is gone. Its kind (public, a secret, its own keys) cannot change, and its secret stays the server's: one it
    /// sends must be its current one.
    /// </summary>
    static async Task<IResult> Replace(HttpContext http, string clientId, IOptions<DynamicRegistrationOptions> options,
        IOpenIddictApplicationManager applications, IOptions<SeedOptions> seed, ScopeResources scopes, SecurityEvents events, RemoteKeys remoteKeys)
    {
        var (application, refusal) = await AuthorizeAsync(http, clientId, applications);
        if (application is null)
            return refusal!;
        var (metadata, invalid) = await ReadAsync(http, options.Value, remoteKeys);
        if (metadata is null)
            return invalid!;
        if (Text(metadata.Raw, "client_id") != clientId)
            return Refuse("invalid_client_metadata", "client_id must be given, and be this client's.");
        var stored = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(stored, application);
        var method = ClientsApi.AuthMethodOf(stored.ClientType ?? ClientTypes.Public, ownKeys: stored.JsonWebKeySet is not null);
        if (KindOf(metadata.Method) != KindOf(method))
            return Refuse("invalid_client_metadata", $"token_endpoint_auth_method cannot change from {method} to {metadata.Method}: register a new client.");
        if (Text(metadata.Raw, "client_secret") is { } sent && !await applications.ValidateClientSecretAsync(application, sent))
            return Refuse("invalid_client_metadata", "client_secret is not this client's secret; the server makes secrets, a client cannot choose one.");

        var (descriptor, problem) = Describe(clientId, method == ClientAuthenticationMethods.ClientSecretBasic ? "kept" : null, metadata, scopes);
        if (descriptor is null)
            return problem!;
        // The stored secret stands in for the placeholder (OpenIddict keeps a secret it finds unchanged), and what the
        // server keeps about the client beside the metadata (its flags, an administrator's settings) stays.
        descriptor.ClientSecret = stored.ClientSecret;
        // Except a jwks_uri: the metadata sent says whether there still is one.
        foreach (var (name, value) in stored.Properties.Where(p => p.Key != RemoteKeys.Property))
            descriptor.Properties.TryAdd(name, value);
        descriptor.Properties[MethodProperty] = JsonSerializer.SerializeToElement(metadata.Method);
        var token = NewToken(descriptor);
        await events.RaiseAsync(EventTypes.ClientUpdated, null, new { client_id = clientId, source = "dynamic_registration" });
        try
        {
            await applications.UpdateAsync(application, descriptor);
        }
        catch (OpenIddictExceptions.ValidationException rejected)
        {
            return Refuse("invalid_client_metadata", string.Join(" ", rejected.Results.Select(r => r.ErrorMessage)));
        }
        return Results.Json(await InformationAsync(http, applications, seed, application, token));
    }

    /// <summary>RFC 7592 §2.3: the client goes, with every authorization and token it was given.</summary>
    static async Task<IResult> Delete(HttpContext http, string clientId, IOpenIddictApplicationManager applications, SecurityEvents events)
    {
        var (application, refusal) = await AuthorizeAsync(http, clientId, applications);
        if (application is null)
            return refusal!;
        await events.RaiseAsync(EventTypes.ClientDeleted, null, new { client_id = clientId, source = "dynamic_registration" });
        await applications.DeleteAsync(application);
        return Results.NoContent();
    }

    /// <summary>
    /// The client named in the path, if the bearer token is its registration access token. An unknown client gets the
    /// same answer as a wrong token (RFC 7592 §2.1), and clients registered otherwise have no token to match.
    /// </summary>
    static async Task<(object? Application, IResult? Refusal)> AuthorizeAsync(HttpContext http, string clientId, IOpenIddictApplicationManager applications)
    {
        const string scheme = "Bearer ";
        var header = http.Request.Headers.Authorization.ToString();
        var application = header.StartsWith(scheme, StringComparison.Ordinal) ? await applications.FindByClientIdAsync(clientId) : null;
        var stored = application is not null && (await applications.GetPropertiesAsync(application)).TryGetValue(TokenProperty, out var hash)
            ? Convert.FromHexString(hash.GetString()!) : null;
        return stored is not null && CryptographicOperations.FixedTimeEquals(stored, SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..])))
            ? (application, null)
            : (null, Unauthorized(http, "The registration access token is not valid for this client."));
    }

    /// <summary>A new registration access token for the client described: only its hash goes into the description.</summary>
    static string NewToken(OpenIddictApplicationDescriptor descriptor)
    {
        var token = ClientsApi.NewSecret();
        descriptor.Properties[TokenProperty] = JsonSerializer.SerializeToElement(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token))));
        return token;
    }

    static string KindOf(string method) => method is ClientAuthenticationMethods.ClientSecretPost ? ClientAuthenticationMethods.ClientSecretBasic : method;

    /// <summary>RFC 7591 §3.2.1 and RFC 7592 §3: the registration, where to manage it and the token to do so with.</summary>
    static Dictionary<string, object?> Information(HttpContext http, string clientId, string? name, IEnumerable<string> redirects,
        IReadOnlyCollection<string> logoutRedirects, IEnumerable<string> grants, string method, JsonElement? jwks, string? jwksUri, IEnumerable<string> scope,
        string token, bool dpopBound, Logouts logouts, bool signedRequests) =>
        new Dictionary<string, object?>
        {
            ["client_id"] = clientId,
            ["client_name"] = name,
            ["redirect_uris"] = redirects,
            ["post_logout_redirect_uris"] = logoutRedirects.Count == 0 ? null : logoutRedirects,
            ["grant_types"] = grants,
            ["response_types"] = new[] { ResponseTypes.Code },
            ["token_endpoint_auth_method"] = method,
            // RFC 7591 §2: never both; a client with a jwks_uri is shown where its keys are, not what was fetched.
            ["jwks"] = jwksUri is null ? jwks : null,
            ["jwks_uri"] = jwksUri,
            ["scope"] = string.Join(' ', scope),
            // RFC 9449 §5.2: said only when true, as false is its default.
            ["dpop_bound_access_tokens"] = dpopBound ? true : null,
            // RFC 9101 §10.5: the same.
            ["require_signed_request_object"] = signedRequests ? true : null,
            ["backchannel_logout_uri"] = logouts.Backchannel,
            ["backchannel_logout_session_required"] = logouts.Backchannel is null ? null : true,
            ["frontchannel_logout_uri"] = logouts.Frontchannel,
            ["frontchannel_logout_session_required"] = logouts.Frontchannel is null ? null : logouts.FrontchannelSessionRequired,
            ["registration_access_token"] = token,
            ["registration_client_uri"] = $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{Path}/{Uri.EscapeDataString(clientId)}",
        }.Where(p => p.Value is not null).ToDictionary();

    static async Task<Dictionary<string, object?>> InformationAsync(HttpContext http, IOpenIddictApplicationManager applications,
        IOptions<SeedOptions> seed, object application, string token)
    {
        var client = await ClientsApi.ViewAsync(applications, seed, application);
        var properties = await applications.GetPropertiesAsync(application);
        // client_secret_basic and client_secret_post are the same kind of client to OpenIddict: the app's own word is kept.
        var method = properties.TryGetValue(MethodProperty, out var said) && KindOf(said.GetString()!) == KindOf(client.TokenEndpointAuthMethod)
            ? said.GetString()! : client.TokenEndpointAuthMethod;
        // openid is no permission in OpenIddict: every client may ask for it, so it is always among the client's scopes.
        var information = Information(http, client.ClientId, await applications.GetDisplayNameAsync(application), client.RedirectUris,
            client.PostLogoutRedirectUris, client.GrantTypes, method, client.Jwks, client.JwksUri, [Scopes.OpenId, .. client.Scopes], token, client.RequireDPoP,
            new Logouts(client.BackchannelLogoutUri, client.FrontchannelLogoutUri, client.FrontchannelLogoutSessionRequired), client.RequireSignedRequestObject);
        if (properties.TryGetValue(IssuedAtProperty, out var issuedAt))
            information["client_id_issued_at"] = issuedAt.GetInt64();
        return information;
    }

    /// <summary>The body as client metadata under this endpoint's rules, or the RFC 7591 error that refuses it.</summary>
    static async Task<(Metadata? Metadata, IResult? Refusal)> ReadAsync(HttpContext http, DynamicRegistrationOptions options, RemoteKeys remoteKeys)
    {
        // Client metadata is a few hundred bytes: a body past 16 KiB is refused, also when it comes without a length.
        if (http.Request.ContentLength > MaxBodyBytes)
            return (null, Refuse("invalid_client_metadata", $"The body must be at most {MaxBodyBytes} bytes."));
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = MaxBodyBytes;
        JsonElement metadata;
        try
        {
            metadata = (await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted)).RootElement;
        }
        catch (Exception e) when (e is JsonException or BadHttpRequestException)
        {
            return (null, Refuse("invalid_client_metadata", $"The body must be a JSON object of client metadata, at most {MaxBodyBytes} bytes."));
        }
        if (metadata.ValueKind != JsonValueKind.Object)
            return (null, Refuse("invalid_client_metadata", "The body must be a JSON object of client metadata."));

        var (redirects, badRedirects) = Strings(metadata, "redirect_uris");
        var (logoutRedirects, badLogoutRedirects) = Strings(metadata, "post_logout_redirect_uris");
        var (grants, badGrants) = Strings(metadata, "grant_types");
        var (responseTypes, badResponseTypes) = Strings(metadata, "response_types");
        var name = Text(metadata, "client_name");
        var method = Text(metadata, "token_endpoint_auth_method") ?? ClientAuthenticationMethods.ClientSecretBasic;
        var scope = Text(metadata, "scope")?.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToList() ?? options.Scopes;
        if (badRedirects || redirects.Count == 0)
            return (null, Refuse("invalid_redirect_uri", "redirect_uris must be a non-empty list of absolute URIs."));
        if (badLogoutRedirects)
            return (null, Refuse("invalid_redirect_uri", "post_logout_redirect_uris must be a list of absolute URIs."));
        if (badGrants || badResponseTypes)
            return (null, Refuse("invalid_client_metadata", "grant_types and response_types must be lists of strings."));
        if (grants.Count == 0)
            grants = [GrantTypes.AuthorizationCode];
        if (grants.FirstOrDefault(g => g is not (GrantTypes.AuthorizationCode or GrantTypes.RefreshToken)) is { } grant)
            return (null, Refuse("invalid_client_metadata", $"grant type '{grant}' cannot be registered here: authorization_code and refresh_token only."));
        if (responseTypes.Any(r => r != ResponseTypes.Code))
            return (null, Refuse("invalid_client_metadata", "response_types can only be [\"code\"]."));
        if (method is not (ClientAuthenticationMethods.None or ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost
            or ClientAuthenticationMethods.PrivateKeyJwt))
            return (null, Refuse("invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt."));
        JsonElement? jwks = metadata.TryGetProperty("jwks", out var keys) && keys.ValueKind != JsonValueKind.Null ? keys : null;
        if (jwks is { ValueKind: not JsonValueKind.Object })
            return (null, Refuse("invalid_client_metadata", "jwks must be a JSON Web Key Set object ({\"keys\": [...]})."));
        var hasJwksUri = metadata.TryGetProperty("jwks_uri", out var jwksUriValue) && jwksUriValue.ValueKind != JsonValueKind.Null;
        if (hasJwksUri && jwksUriValue.ValueKind != JsonValueKind.String)
            return (null, Refuse("invalid_client_metadata", "jwks_uri must be the URL of the client's JSON Web Key Set."));
        var jwksUri = hasJwksUri ? jwksUriValue.GetString() : null;
        if (jwks is not null && jwksUri is not null)
            return (null, Refuse("invalid_client_metadata", "jwks and jwks_uri cannot both be given (RFC 7591 §2)."));
        if ((method == ClientAuthenticationMethods.PrivateKeyJwt) != (jwks is not null || jwksUri is not null))
            return (null, Refuse("invalid_client_metadata",
                "private_key_jwt goes with the client's public keys, in jwks or at jwks_uri, and those only with private_key_jwt."));
        var dpopBound = false;
        if (metadata.TryGetProperty("dpop_bound_access_tokens", out var dpop) && dpop.ValueKind != JsonValueKind.Null)
        {
            if (dpop.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return (null, Refuse("invalid_client_metadata", "dpop_bound_access_tokens must be true or false."));
            dpopBound = dpop.GetBoolean();
        }
        var signedRequests = false;
        if (metadata.TryGetProperty("require_signed_request_object", out var signed) && signed.ValueKind != JsonValueKind.Null)
        {
            if (signed.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return (null, Refuse("invalid_client_metadata", "require_signed_request_object must be true or false."));
            signedRequests = signed.GetBoolean();
        }
        var (backchannel, badBackchannel) = OptionalString(metadata, "backchannel_logout_uri");
        var (frontchannel, badFrontchannel) = OptionalString(metadata, "frontchannel_logout_uri");
        if (badBackchannel || badFrontchannel)
            return (null, Refuse("invalid_client_metadata", "backchannel_logout_uri and frontchannel_logout_uri must be absolute http(s) URIs."));
        var frontchannelSession = true;
        if (metadata.TryGetProperty("frontchannel_logout_session_required", out var session) && session.ValueKind != JsonValueKind.Null)
        {
            if (session.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return (null, Refuse("invalid_client_metadata", "frontchannel_logout_session_required must be true or false."));
            frontchannelSession = session.GetBoolean();
        }
        if (scope.FirstOrDefault(s => !options.Scopes.Contains(s)) is { } refused)
            return (null, Refuse("invalid_client_metadata", $"scope '{refused}' cannot be registered here; allowed: {string.Join(' ', options.Scopes)}."));
        if (jwksUri is not null)
        {
            // Fetched now: a URL that serves no usable key set, or one not fetched from, is refused at registration (RemoteKeys).
            try
            {
                jwks = ClientsApi.KeysView(await remoteKeys.FetchAsync(jwksUri, http.RequestAborted));
            }
            catch (InvalidClientException invalid)
            {
                return (null, Refuse("invalid_client_metadata", invalid.Message + "."));
            }
        }
        return (new Metadata(name, method, scope, redirects, logoutRedirects, grants, jwks, jwksUri, dpopBound, metadata,
            new Logouts(backchannel, frontchannel, frontchannelSession), signedRequests), null);
    }

    /// <summary>The client as OpenIddict keeps it, under the clients API's rules; explicit consent always.</summary>
    static (OpenIddictApplicationDescriptor? Descriptor, IResult? Refusal) Describe(string clientId, string? secret, Metadata metadata, ScopeResources scopes)
    {
        var (descriptor, field, problem) = ClientsApi.Validate(clientId, secret,
            new ClientsApi.ClientRequest(clientId, metadata.Name, metadata.Method == ClientAuthenticationMethods.None,
                [.. metadata.Grants.Append(GrantTypes.AuthorizationCode).Distinct()], metadata.Redirects, metadata.LogoutRedirects, metadata.Scope,
                ConsentTypes.Explicit, metadata.Logouts.Backchannel, null, Jwks: metadata.Jwks, JwksUri: metadata.JwksUri, RequireDPoP: metadata.DPoPBound,
                FrontchannelLogoutUri: metadata.Logouts.Frontchannel, FrontchannelLogoutSessionRequired: metadata.Logouts.FrontchannelSessionRequired,
                RequireSignedRequestObject: metadata.SignedRequests), scopes);
        return descriptor is null
            ? (null, Refuse(field is "redirect_uris" or "post_logout_redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata", problem!))
            : (descriptor, null);
    }

    static IResult Unauthorized(HttpContext http, string description)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        return Results.Json(new { error = "invalid_token", error_description = description }, statusCode: StatusCodes.Status401Unauthorized);
    }

    static IResult Refuse(string error, string description) =>
        Results.Json(new { error, error_description = description }, statusCode: StatusCodes.Status400BadRequest);

    static string? Text(JsonElement metadata, string name) =>
        metadata.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text ? text : null;

    /// <summary>A string, null when absent; Bad when it is anything else.</summary>
    static (string? Value, bool Bad) OptionalString(JsonElement metadata, string name) =>
        !metadata.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? (null, false)
        : value.ValueKind == JsonValueKind.String ? (value.GetString(), false)
        : (null, true);

    /// <summary>A list of strings, empty when absent; Bad when it is anything else.</summary>
    static (List<string> Values, bool Bad) Strings(JsonElement metadata, string name)
    {
        if (!metadata.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return ([], false);
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
            return ([], true);
        return ([.. value.EnumerateArray().Select(v => v.GetString()!).Distinct()], false);
    }

    // Hashed first, so the comparison takes the same time whatever the lengths.
    static bool Matches(string presented, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}
