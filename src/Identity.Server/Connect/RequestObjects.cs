using System.Collections.Immutable;
using System.Text.Json;
using Identity.Server.Clients;
using Microsoft.AspNetCore;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// JWT-Secured Authorization Requests (RFC 9101, OpenID Connect Core §6.1), which OpenIddict refuses: the client sends
/// its authorization request as a JWT signed with one of its registered keys (jwks or jwks_uri, as for private_key_jwt),
/// in the <c>request</c> parameter of the authorization endpoint or of a pushed request (RFC 9126). The browser and
/// anything on the way can then neither read nor change what the client asked for, as FAPI and Keycloak's
/// "request object" clients expect.
/// <list type="bullet">
/// <item>The object is checked before OpenIddict sees the request: a signature by one of the client's keys with an
/// asymmetric algorithm (never <c>none</c>: an unsigned object proves nothing), <c>iss</c> the client, <c>aud</c> this
/// server's issuer, <c>exp</c> present and within <see cref="MaxLifetime"/>, <c>client_id</c> (if there) the one
/// outside, and no nested <c>request</c> or <c>request_uri</c>. Encrypted objects are refused.</item>
/// <item>Then its parameters are the request (RFC 9101 §6.3): any beside it other than client_id (and a pushed
/// request's client authentication) are dropped, so a parameter added in the browser changes nothing. OpenIddict
/// goes on to check them as those of any other request: redirect_uri, PKCE, scopes.</item>
/// </list>
/// </summary>
public static class RequestObjects
{
    /// <summary>The client must send its authorization requests as request objects (require_signed_request_object).</summary>
    public const string Requirement = Requirements.Prefixes.Feature + "signed_request_object";

    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(60);
    static readonly TimeSpan Skew = TimeSpan.FromSeconds(30);
    public static readonly string[] Algorithms = DPoP.Algorithms;

    /// <summary>The HttpContext item that holds the request object an authorization request was read from.</summary>
    public const string Item = "Identity.RequestObject";

    /// <summary>RFC 9101 §4: the media type of a request object; a bare JWT (or none) is taken too, as OIDC Core's objects have.</summary>
    static readonly string?[] Types = [null, "", "JWT", "oauth-authz-req+jwt"];

    // Claims about the JWT itself, not parameters of the request.
    static readonly HashSet<string> Envelope = [Claims.Issuer, Claims.Audience, Claims.ExpiresAt, Claims.NotBefore, Claims.IssuedAt, Claims.JwtId];

    // A pushed request authenticates its client beside the object (RFC 9126 §3); these stay.
    static readonly string[] ClientAuthentication = [Parameters.ClientSecret, Parameters.ClientAssertion, Parameters.ClientAssertionType];

    public sealed class Authorization(IOpenIddictApplicationManager applications, RemoteKeys remote, TimeProvider time) : IOpenIddictServerHandler<ValidateAuthorizationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateAuthorizationRequestContext>()
            .UseScopedHandler<Authorization>()
            .SetOrder(OpenIddictServerHandlers.Authentication.ValidateRequestParameter.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ValidateAuthorizationRequestContext context)
        {
            var requestObject = context.Request.Request;
            if (!await ResolveAsync(context, context.Request, [], applications, remote, time))
                return;
            context.SetRedirectUri(context.Request.RedirectUri!);
            context.Transaction.GetHttpRequest()!.HttpContext.Items[Item] = requestObject;
        }
    }

    public sealed class Pushed(IOpenIddictApplicationManager applications, RemoteKeys remote, TimeProvider time) : IOpenIddictServerHandler<ValidatePushedAuthorizationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidatePushedAuthorizationRequestContext>()
            .UseScopedHandler<Pushed>()
            .SetOrder(OpenIddictServerHandlers.Authentication.ValidatePushedRequestParameter.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ValidatePushedAuthorizationRequestContext context)
        {
            if (await ResolveAsync(context, context.Request, ClientAuthentication, applications, remote, time))
                context.SetRedirectUri(context.Request.RedirectUri!);
        }
    }

    /// <summary>
    /// Replaces <paramref name="request"/>'s parameters with those of its request object, if it has one; true then,
    /// and the caller makes the object's redirect_uri the one OpenIddict checks (it took the one outside already).
    /// A bad object rejects <paramref name="context"/> (invalid_request_object, RFC 9101 §6.2).
    /// </summary>
    static async Task<bool> ResolveAsync(BaseValidatingContext context, OpenIddictRequest request, string[] kept,
        IOpenIddictApplicationManager applications, RemoteKeys remote, TimeProvider time)
    {
        if (string.IsNullOrEmpty(request.Request))
        {
            // A pushed request was held to this when it was pushed: the request_uri stands for a signed one then.
            if (string.IsNullOrEmpty(request.RequestUri) && !string.IsNullOrEmpty(request.ClientId) &&
                await applications.FindByClientIdAsync(request.ClientId, context.CancellationToken) is { } client &&
                await applications.HasRequirementAsync(client, Requirement, context.CancellationToken))
                context.Reject(Errors.InvalidRequest, "This client must sign its authorization requests: send them as a request object in request.");
            return false;
        }
        if (!string.IsNullOrEmpty(request.RequestUri))
        {
            context.Reject(Errors.InvalidRequest, "request and request_uri cannot both be given.");
            return false;
        }
        // RFC 9101 §5: client_id stays outside, so that the server knows whose keys to check the object with.
        if (string.IsNullOrEmpty(request.ClientId) || await applications.FindByClientIdAsync(request.ClientId, context.CancellationToken) is not { } application)
        {
            context.Reject(Errors.InvalidRequest, "client_id must name a client beside the request object.");
            return false;
        }

        var (parameters, problem) = await VerifyAsync(request.Request, request.ClientId, IssuerOf(context), application, applications, remote, time, context.CancellationToken);
        if (parameters is null)
        {
            context.Reject(Errors.InvalidRequestObject, problem);
            return false;
        }

        var outside = kept.Append(Parameters.ClientId).ToDictionary(name => name, name => request.GetParameter(name));
        foreach (var name in request.GetParameters().Select(p => p.Key).ToList())
            request.RemoveParameter(name);
        foreach (var (name, value) in parameters)
            request.SetParameter(name, value);
        foreach (var (name, value) in outside)
            request.SetParameter(name, value);
        return true;
    }

    static string IssuerOf(BaseContext context) => (context.Options.Issuer ?? context.BaseUri!).AbsoluteUri;

    static async Task<(Dictionary<string, OpenIddictParameter>? Parameters, string Problem)> VerifyAsync(string jwt, string clientId, string issuer,
        object application, IOpenIddictApplicationManager applications, RemoteKeys remote, TimeProvider time, CancellationToken cancellationToken)
    {
        JsonWebToken token;
        try
        {
            token = new JsonWebToken(jwt);
        }
        catch (ArgumentException)
        {
            return (null, "The request object is not a JWT.");
        }
        if (token.IsEncrypted)
            return (null, "Encrypted request objects are not supported: sign the request object with one of the client's keys.");
        if (!Algorithms.Contains(token.Alg, StringComparer.Ordinal))
            return (null, $"The request object must be signed with one of {string.Join(", ", Algorithms)}.");
        if (!Types.Contains(token.Typ, StringComparer.OrdinalIgnoreCase))
            return (null, "The request object's typ must be oauth-authz-req+jwt.");

        await remote.RefreshForAsync(applications, application, token.Kid, cancellationToken);
        if (await applications.GetJsonWebKeySetAsync(application, cancellationToken) is not { } keys)
            return (null, "The client has no registered keys (jwks or jwks_uri) to check a request object with.");

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            IssuerSigningKeys = keys.GetSigningKeys(),
            ValidAlgorithms = Algorithms,
            ValidIssuer = clientId,
            ValidAudience = issuer,
            RequireSignedTokens = true,
            // Checked below against the server's clock.
            ValidateLifetime = false,
        });
        if (!result.IsValid)
            return (null, result.Exception switch
            {
                SecurityTokenInvalidAudienceException => $"The request object's aud must be this server's issuer, {issuer}.",
                SecurityTokenInvalidIssuerException => "The request object's iss must be the client_id.",
                _ => "The request object's signature does not match any of the client's keys.",
            });
        var now = time.GetUtcNow().UtcDateTime;
        if (!token.TryGetPayloadValue<long>(Claims.ExpiresAt, out _))
            return (null, "The request object must carry exp.");
        if (token.ValidTo <= now - Skew || (token.ValidFrom != DateTime.MinValue && token.ValidFrom > now + Skew))
            return (null, "The request object has expired or is not valid yet.");
        if (token.ValidTo > now + MaxLifetime)
            return (null, $"The request object must expire within {MaxLifetime.TotalMinutes:0} minutes.");

        var parameters = new Dictionary<string, OpenIddictParameter>(StringComparer.Ordinal);
        using var payload = JsonDocument.Parse(Base64UrlEncoder.Decode(token.EncodedPayload));
        foreach (var claim in payload.RootElement.EnumerateObject())
        {
            if (Envelope.Contains(claim.Name))
                continue;
            if (claim.Name is Parameters.Request or Parameters.RequestUri)
                return (null, "A request object cannot carry request or request_uri.");
            if (claim.Name == Parameters.ClientId && (claim.Value.ValueKind != JsonValueKind.String || claim.Value.GetString() != clientId))
                return (null, "The request object's client_id must be the client_id beside it.");
            switch (claim.Value.ValueKind)
            {
                case JsonValueKind.String:
                    parameters[claim.Name] = claim.Value.GetString();
                    break;
                // Numbers and booleans as a form would carry them: max_age is a number in OIDC Core's objects.
                case JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False:
                    parameters[claim.Name] = claim.Value.GetRawText();
                    break;
                // RFC 8707 resources repeat; nothing else may (as RejectRepeatedParameters has it for forms).
                case JsonValueKind.Array when claim.Name == Parameters.Resource && claim.Value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String):
                    parameters[claim.Name] = new OpenIddictParameter(claim.Value.EnumerateArray().Select(v => v.GetString()).ToImmutableArray());
                    break;
                // JSON-valued parameters (claims, authorization_details) stay JSON.
                case JsonValueKind.Object:
                    parameters[claim.Name] = claim.Value.Clone();
                    break;
                default:
                    return (null, $"The request object's '{claim.Name}' must be a string.");
            }
        }
        if (!parameters.ContainsKey(Parameters.RedirectUri))
            return (null, "The request object must carry redirect_uri.");
        return (parameters, "");
    }
}
