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
/// register their public keys (private_key_jwt with jwks; jwks_uri is not fetched).
/// Registrations are audited (client.created) and count against the authentication rate limit per address.
/// Clients registered here are managed through /api/v1/clients (RFC 7592's management endpoint is not offered).
/// </summary>
public static class DynamicRegistration
{
    public const string Path = "/connect/register";
    const int MaxBodyBytes = 16 * 1024;

    /// <summary>Set on a self-registered client, so that its consent page can say nobody vetted it.</summary>
    public const string Property = "dynamically_registered";

    public static WebApplicationBuilder AddDynamicRegistration(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DynamicRegistrationOptions>().BindConfiguration(DynamicRegistrationOptions.Section);
        return builder;
    }

    public static IEndpointRouteBuilder MapDynamicRegistration(this IEndpointRouteBuilder app)
    {
        if (app.ServiceProvider.GetRequiredService<IOptions<DynamicRegistrationOptions>>().Value.Enabled)
            app.MapPost(Path, Register).ExcludeFromDescription();
        return app;
    }

    static async Task<IResult> Register(HttpContext http, IOptions<DynamicRegistrationOptions> options, IOpenIddictApplicationManager applications,
        ScopeResources scopes, SecurityEvents events, TimeProvider time)
    {
        if (options.Value.InitialAccessToken is { } expected && !Matches(http.Request.Headers.Authorization.ToString(), "Bearer " + expected))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
            return Results.Json(new { error = "invalid_token", error_description = "A valid initial access token is required to register." },
                statusCode: StatusCodes.Status401Unauthorized);
        }

        // Client metadata is a few hundred bytes: a body past 16 KiB is refused, also when it comes without a length.
        if (http.Request.ContentLength > MaxBodyBytes)
            return Refuse("invalid_client_metadata", $"The body must be at most {MaxBodyBytes} bytes.");
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = MaxBodyBytes;
        JsonElement metadata;
        try
        {
            metadata = (await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted)).RootElement;
        }
        catch (Exception e) when (e is JsonException or BadHttpRequestException)
        {
            return Refuse("invalid_client_metadata", $"The body must be a JSON object of client metadata, at most {MaxBodyBytes} bytes.");
        }
        if (metadata.ValueKind != JsonValueKind.Object)
            return Refuse("invalid_client_metadata", "The body must be a JSON object of client metadata.");

        var (redirects, badRedirects) = Strings(metadata, "redirect_uris");
        var (logoutRedirects, badLogoutRedirects) = Strings(metadata, "post_logout_redirect_uris");
        var (grants, badGrants) = Strings(metadata, "grant_types");
        var (responseTypes, badResponseTypes) = Strings(metadata, "response_types");
        var name = Text(metadata, "client_name");
        var method = Text(metadata, "token_endpoint_auth_method") ?? ClientAuthenticationMethods.ClientSecretBasic;
        var scope = Text(metadata, "scope")?.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct().ToList() ?? options.Value.Scopes;
        if (badRedirects || redirects.Count == 0)
            return Refuse("invalid_redirect_uri", "redirect_uris must be a non-empty list of absolute URIs.");
        if (badLogoutRedirects)
            return Refuse("invalid_redirect_uri", "post_logout_redirect_uris must be a list of absolute URIs.");
        if (badGrants || badResponseTypes)
            return Refuse("invalid_client_metadata", "grant_types and response_types must be lists of strings.");
        if (grants.Count == 0)
            grants = [GrantTypes.AuthorizationCode];
        if (grants.FirstOrDefault(g => g is not (GrantTypes.AuthorizationCode or GrantTypes.RefreshToken)) is { } grant)
            return Refuse("invalid_client_metadata", $"grant type '{grant}' cannot be registered here: authorization_code and refresh_token only.");
        if (responseTypes.Any(r => r != ResponseTypes.Code))
            return Refuse("invalid_client_metadata", "response_types can only be [\"code\"].");
        if (method is not (ClientAuthenticationMethods.None or ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost
            or ClientAuthenticationMethods.PrivateKeyJwt))
            return Refuse("invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt.");
        if (metadata.TryGetProperty("jwks_uri", out _))
            return Refuse("invalid_client_metadata", "jwks_uri is not supported: send the public keys in jwks.");
        JsonElement? jwks = metadata.TryGetProperty("jwks", out var keys) && keys.ValueKind != JsonValueKind.Null ? keys : null;
        if (jwks is { ValueKind: not JsonValueKind.Object })
            return Refuse("invalid_client_metadata", "jwks must be a JSON Web Key Set object ({\"keys\": [...]}).");
        if ((method == ClientAuthenticationMethods.PrivateKeyJwt) != (jwks is not null))
            return Refuse("invalid_client_metadata", "private_key_jwt goes with jwks, the client's public keys, and jwks only with private_key_jwt.");
        if (scope.FirstOrDefault(s => !options.Value.Scopes.Contains(s)) is { } refused)
            return Refuse("invalid_client_metadata", $"scope '{refused}' cannot be registered here; allowed: {string.Join(' ', options.Value.Scopes)}.");

        var clientId = "dyn-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var secret = method is ClientAuthenticationMethods.None or ClientAuthenticationMethods.PrivateKeyJwt ? null : ClientsApi.NewSecret();
        var (descriptor, field, problem) = ClientsApi.Validate(clientId, secret,
            new ClientsApi.ClientRequest(clientId, name, method == ClientAuthenticationMethods.None, [.. grants.Append(GrantTypes.AuthorizationCode).Distinct()],
                redirects, logoutRedirects, scope, ConsentTypes.Explicit, null, null, Jwks: jwks), scopes);
        if (descriptor is null)
            return Refuse(field is "redirect_uris" or "post_logout_redirect_uris" ? "invalid_redirect_uri" : "invalid_client_metadata", problem!);
        descriptor.Properties[Property] = JsonSerializer.SerializeToElement(true);

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
        return Results.Json(new Dictionary<string, object?>
        {
            ["client_id"] = clientId,
            ["client_secret"] = secret,
            ["client_id_issued_at"] = time.GetUtcNow().ToUnixTimeSeconds(),
            ["client_secret_expires_at"] = secret is null ? null : 0,
            ["client_name"] = name,
            ["redirect_uris"] = redirects,
            ["post_logout_redirect_uris"] = logoutRedirects.Count == 0 ? null : logoutRedirects,
            ["grant_types"] = descriptor.Permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal))
                .Select(p => p[Permissions.Prefixes.GrantType.Length..]).Order(StringComparer.Ordinal),
            ["response_types"] = new[] { ResponseTypes.Code },
            ["token_endpoint_auth_method"] = method,
            ["jwks"] = jwks,
            ["scope"] = string.Join(' ', scope),
        }.Where(p => p.Value is not null).ToDictionary(), statusCode: StatusCodes.Status201Created);
    }

    static IResult Refuse(string error, string description) =>
        Results.Json(new { error, error_description = description }, statusCode: StatusCodes.Status400BadRequest);

    static string? Text(JsonElement metadata, string name) =>
        metadata.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text ? text : null;

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
