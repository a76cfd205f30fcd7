using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Identity.Server.Data;
using Microsoft.AspNetCore;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using OpenIddict.Validation;
using OpenIddict.Validation.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// DPoP (RFC 9449): sender-constrained tokens, as RFC 9700 §2.2 recommends. A client that sends a DPoP proof (a JWT
/// signed by a key of its own, whose public half rides in the proof's header) with its token request gets an access
/// token bound to that key (cnf.jkt, the key's RFC 7638 thumbprint) and token_type DPoP; a public client's refresh
/// token is bound too (a confidential client's is already bound to its credentials, §5). Whoever steals such a token
/// cannot use it without the private key. This server's own APIs take a bound token only as "Authorization: DPoP"
/// with a fresh proof for that request (method, URL, the token's hash, same key), and never as a bearer token.
/// A proof works once: its jti is kept until it can no longer be accepted. Without a DPoP header nothing changes.
/// An authorization request may bind its code to a key too (dpop_jkt, §10). With Identity:Tokens:RequireDPoPNonce a
/// proof must also carry a nonce from this server (§8, §9; <see cref="DPoPNonces"/>).
/// </summary>
public static class DPoP
{
    public const string Header = "DPoP";
    public const string Scheme = "DPoP";
    public const string InvalidProof = "invalid_dpop_proof";
    public const string UseNonce = "use_dpop_nonce";
    /// <summary>The OpenIddict requirement of a client whose every token request must carry a proof (Identity:Clients:N:RequireDPoP).</summary>
    public const string Requirement = Requirements.Prefixes.Feature + "dpop";
    const string ProofType = "dpop+jwt";
    const string JktProperty = ".identity_dpop_jkt";
    /// <summary>
    /// The binding of a refresh token or code: a private claim, not cnf, as only this server reads them (and OpenIddict's
    /// own cnf check knows only mTLS's x5t#S256). Named as the authorization request parameter it comes from for a code (§10).
    /// </summary>
    const string BindingClaim = "dpop_jkt";
    const string SchemeProperty = ".identity_dpop_scheme";

    /// <summary>Asymmetric algorithms only (§4.3): a proof shows possession of a private key.</summary>
    public static readonly string[] Algorithms = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];

    /// <summary>How old a proof's iat may be, and how far ahead of this server's clock (the client's may differ).</summary>
    static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(2), MaxAhead = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The proof of <paramref name="http"/> checked for this request: its key's thumbprint, or the error
    /// (<see cref="InvalidProof"/> or <see cref="UseNonce"/>) and the reason it fails. When nonces are required, the
    /// answer carries a fresh one whatever the outcome, so the client has it for its next proof.
    /// </summary>
    static async Task<(string? Jkt, string? Error, string? Problem)> CheckProofAsync(HttpRequest http, IEnumerable<Uri> targets, string? accessToken,
        TimeProvider time, DPoPNonces nonces, CancellationToken cancellationToken)
    {
        nonces.Offer(http.HttpContext.Response);
        var (jkt, problem) = await KeyOfProofAsync(http, targets, accessToken, time, nonces, cancellationToken);
        return jkt is not null ? (jkt, null, null) : (null, problem == NonceProblem ? UseNonce : InvalidProof, problem);
    }

    const string NonceProblem = "The proof must carry the nonce of this answer's DPoP-Nonce header.";

    static async Task<(string? Jkt, string? Problem)> KeyOfProofAsync(HttpRequest http, IEnumerable<Uri> targets, string? accessToken,
        TimeProvider time, DPoPNonces nonces, CancellationToken cancellationToken)
    {
        var headers = http.Headers[Header];
        if (headers.Count != 1 || string.IsNullOrEmpty(headers[0]))
            return (null, "Send exactly one DPoP header.");
        JsonWebToken proof;
        JsonWebKey key;
        try
        {
            proof = new JsonWebToken(headers[0]);
            if (!proof.TryGetHeaderValue<JsonElement>("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object)
                return (null, "The proof must carry its public key in the jwk header.");
            key = new JsonWebKey(jwk.GetRawText());
        }
        catch (Exception invalid) when (invalid is ArgumentException or SecurityTokenException or JsonException)
        {
            return (null, "The DPoP header is not a well-formed JWT.");
        }
        if (key.Kty is not ("RSA" or "EC") || key.HasPrivateKey || !string.IsNullOrEmpty(key.K))
            return (null, "The proof's jwk must be an RSA or EC public key, without its private part.");
        // As for clients' own keys (ClientRegistration.PublicSigningKeys): no RSA key under 2048 bits.
        if (key.Kty == "RSA" && (string.IsNullOrEmpty(key.N) || Base64UrlEncoder.DecodeBytes(key.N).SkipWhile(b => b == 0).Count() * 8 < 2048))
            return (null, "The proof's RSA key must have at least 2048 bits.");

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(proof, new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidTypes = [ProofType],
            ValidAlgorithms = Algorithms,
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            // The one key there is: the proof names it by value (jwk), not by kid.
            TryAllIssuerSigningKeys = true,
        });
        if (!result.IsValid)
            return (null, "The proof's signature, type (dpop+jwt) or algorithm is not accepted.");

        if (!proof.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti) || jti.Length > 256)
            return (null, "The proof must carry a jti.");
        if (!proof.TryGetPayloadValue<string>("htm", out var method) || !string.Equals(method, http.Method, StringComparison.Ordinal))
            return (null, $"The proof's htm must be this request's method, {http.Method}.");
        if (!proof.TryGetPayloadValue<string>("htu", out var target) || !Uri.TryCreate(target, UriKind.Absolute, out var targetUri) ||
            !targets.Any(t => SameTarget(t, targetUri)))
            return (null, "The proof's htu must be this request's URL, without query and fragment.");
        if (!proof.TryGetPayloadValue<long>("iat", out var issuedAt))
            return (null, "The proof must carry iat.");
        var now = time.GetUtcNow();
        var issued = DateTimeOffset.FromUnixTimeSeconds(issuedAt);
        if (issued < now - MaxAge || issued > now + MaxAhead)
            return (null, "The proof is too old or from the future: sign a new one for each request.");
        if (accessToken is not null &&
            (!proof.TryGetPayloadValue<string>("ath", out var ath) ||
             !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(ath), Encoding.ASCII.GetBytes(Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)))))))
            return (null, "The proof's ath must be the SHA-256 of the access token it comes with.");
        // Before its jti is spent: the client signs the same request again with the nonce it has just been given.
        if (nonces.Required && !(proof.TryGetPayloadValue<string>("nonce", out var nonce) && nonces.IsValid(nonce)))
            return (null, NonceProblem);

        var jkt = Base64UrlEncoder.Encode(key.ComputeJwkThumbprint());
        // A proof is accepted until MaxAge past its iat, so its jti is kept that long.
        // The request's database context, asked for only here: the handlers are singletons, as most requests carry no proof.
        var db = http.HttpContext.RequestServices.GetRequiredService<IdentityDbContext>();
        if (!await UsedJwtIds.TryUseAsync(db, "dpop\n" + jkt + "\n" + jti, issued + MaxAge, cancellationToken))
            return (null, "This proof was already used: sign a new one for each request.");
        return (jkt, null);
    }

    /// <summary>RFC 9449 §4.3: the proof's htu against the request's URL, both without query and fragment.</summary>
    static bool SameTarget(Uri expected, Uri proof) =>
        string.Equals(expected.Scheme, proof.Scheme, StringComparison.OrdinalIgnoreCase) &&
        string.Equals(expected.IdnHost, proof.IdnHost, StringComparison.OrdinalIgnoreCase) &&
        expected.Port == proof.Port &&
        string.Equals(expected.AbsolutePath, proof.AbsolutePath, StringComparison.Ordinal);

    /// <summary>
    /// The URLs a client may have signed for this request: as the request reached the server and, when Identity:Issuer
    /// is set (a proxy in front), the same path under the issuer.
    /// </summary>
    static IEnumerable<Uri> Targets(HttpRequest http, Uri? issuer)
    {
        var path = http.PathBase.Add(http.Path).Value ?? "/";
        if (Uri.TryCreate($"{http.Scheme}://{http.Host}{path}", UriKind.Absolute, out var received))
            yield return received;
        if (issuer is not null && Uri.TryCreate(issuer, path.TrimStart('/'), out var behindProxy))
            yield return behindProxy;
    }

    /// <summary>
    /// The binding of an access token this server signed: none (no cnf), the key's thumbprint (cnf.jkt), or "" for any
    /// other cnf (mTLS's x5t#S256, which this server never issues and so does not accept).
    /// </summary>
    static string? JktOf(ClaimsPrincipal principal)
    {
        if (principal.GetClaim(Claims.Confirmation) is not { } cnf)
            return null;
        try
        {
            using var confirmation = JsonDocument.Parse(cnf);
            return confirmation.RootElement.ValueKind == JsonValueKind.Object && confirmation.RootElement.TryGetProperty("jkt", out var jkt) &&
                   jkt.ValueKind == JsonValueKind.String ? jkt.GetString() : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }

    /// <summary>
    /// Whether <paramref name="principal"/>'s token may be used for <paramref name="http"/>: an unbound token only as a
    /// bearer token, a bound one only with the DPoP scheme and a proof of its key for this very request (§7). The reason when not.
    /// </summary>
    static async Task<(string Error, string Description)?> CheckUseAsync(ClaimsPrincipal principal, bool sentAsDPoP, string accessToken, HttpRequest http,
        Uri? issuer, TimeProvider time, DPoPNonces nonces, CancellationToken cancellationToken)
    {
        var bound = JktOf(principal);
        if (bound is null)
            return sentAsDPoP ? (Errors.InvalidToken, "This access token is not bound to a key: send it as a Bearer token.") : null;
        if (bound.Length == 0)
            return (Errors.InvalidToken, "This access token's binding is not one this server checks.");
        if (!sentAsDPoP)
            return (Errors.InvalidToken, "This access token is bound to a key: send it with the DPoP scheme and a proof.");
        var (jkt, error, problem) = await CheckProofAsync(http, Targets(http, issuer), accessToken, time, nonces, cancellationToken);
        if (jkt is null)
            return (error!, problem!);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(jkt), Encoding.ASCII.GetBytes(bound))
            ? null
            : (InvalidProof, "The proof is not signed with the key this access token is bound to.");
    }

    /// <summary>
    /// RFC 9449 §7.1: a proof's fault (or a missing nonce) is a 401, and a request made with the DPoP scheme is answered
    /// in it, with the algorithms a proof may use. OpenIddict answers errors it does not know with 400 and always
    /// challenges with Bearer.
    /// </summary>
    static void Challenge(HttpResponse response, string? error, bool sentAsDPoP)
    {
        var ofProof = error is InvalidProof or UseNonce;
        if (!ofProof && !sentAsDPoP)
            return;
        if (ofProof)
            response.StatusCode = StatusCodes.Status401Unauthorized;
        var challenge = response.Headers.WWWAuthenticate.ToString();
        if (!challenge.StartsWith(Schemes.Bearer, StringComparison.Ordinal))
            return;
        var parameters = challenge[Schemes.Bearer.Length..].Trim();
        response.Headers.WWWAuthenticate = $"{Scheme} {parameters}{(parameters.Length > 0 ? ", " : "")}algs=\"{string.Join(' ', Algorithms)}\"";
    }

    /// <summary>The token of "Authorization: DPoP token", or null for any other scheme.</summary>
    static string? DPoPToken(HttpRequest? http) =>
        http?.Headers.Authorization.ToString() is { } header && header.StartsWith(Scheme + " ", StringComparison.OrdinalIgnoreCase)
            ? header[(Scheme.Length + 1)..].Trim()
            : null;

    static void Bind(ClaimsPrincipal principal, string jkt) =>
        principal.SetClaim(Claims.Confirmation, JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["jkt"] = jkt }));

    /// <summary>At the token endpoint: a DPoP header is checked before anything else, and its key remembered.</summary>
    public sealed class CheckTokenRequest(TimeProvider time, DPoPNonces nonces) : IOpenIddictServerHandler<OpenIddictServerEvents.ValidateTokenRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ValidateTokenRequestContext>()
            .UseSingletonHandler<CheckTokenRequest>()
            // Before OpenIddict authenticates the request, which validates a refresh token against its binding.
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateAuthentication.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(OpenIddictServerEvents.ValidateTokenRequestContext context)
        {
            var http = context.Transaction.GetHttpRequest();
            if (http is null || !http.Headers.ContainsKey(Header))
                return;
            var (jkt, error, problem) = await CheckProofAsync(http, Targets(http, context.Options.Issuer), null, time, nonces, context.CancellationToken);
            if (jkt is null)
            {
                context.Reject(error, problem);
                return;
            }
            context.Transaction.SetProperty(JktProperty, jkt);
        }
    }

    /// <summary>A client that must use DPoP gets nothing without a proof (§5.2); known once OpenIddict has authenticated it.</summary>
    public sealed class RequireForClient(DPoPNonces nonces) : IOpenIddictServerHandler<OpenIddictServerEvents.ValidateTokenRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ValidateTokenRequestContext>()
            .UseSingletonHandler<RequireForClient>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateAuthentication.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(OpenIddictServerEvents.ValidateTokenRequestContext context)
        {
            if (context.Transaction.GetProperty<string>(JktProperty) is not null || string.IsNullOrEmpty(context.ClientId) ||
                context.Transaction.GetHttpRequest() is not { } http)
                return;
            // The client this request has already read, from ClientCache, and its stored requirements as they are: every
            // token request without a proof comes here, and asking the manager (which parses them) cost about 2% of a token.
            var clients = http.HttpContext.RequestServices.GetRequiredService<IOpenIddictApplicationCache<OpenIddictEntityFrameworkCoreApplication>>();
            if (await clients.FindByClientIdAsync(context.ClientId, context.CancellationToken) is { Requirements: { } requirements } &&
                JsonSerializer.Deserialize<string[]>(requirements)?.Contains(Requirement) == true)
            {
                // Its first proof can then carry a nonce already.
                nonces.Offer(http.HttpContext.Response);
                context.Reject(InvalidProof, "This client must send a DPoP proof with every token request.");
            }
        }
    }

    /// <summary>
    /// An authorization request's dpop_jkt (§10): the code it gives is redeemed only with a proof of that key, so a code
    /// stolen on its way back through the browser is useless to a thief without the key.
    /// </summary>
    public sealed class BindCode : IOpenIddictServerHandler<OpenIddictServerEvents.ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ProcessSignInContext>()
            .UseSingletonHandler<BindCode>()
            .SetOrder(OpenIddictServerHandlers.PrepareAuthorizationCodePrincipal.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.ProcessSignInContext context)
        {
            if (context.EndpointType == OpenIddictServerEndpointType.Authorization && context.AuthorizationCodePrincipal is { } code &&
                (string?)context.Request.GetParameter(BindingClaim) is { Length: > 0 } jkt)
                code.SetClaim(BindingClaim, jkt);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A bound refresh token or code is redeemed only with a proof from its key (§5, §10).</summary>
    public sealed class CheckBoundGrant : IOpenIddictServerHandler<OpenIddictServerEvents.ProcessAuthenticationContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ProcessAuthenticationContext>()
            .UseSingletonHandler<CheckBoundGrant>()
            .SetOrder(Math.Max(OpenIddictServerHandlers.ValidateRefreshToken.Descriptor.Order, OpenIddictServerHandlers.ValidateAuthorizationCode.Descriptor.Order) + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.ProcessAuthenticationContext context)
        {
            var proved = context.Transaction.GetProperty<string>(JktProperty);
            if (context.RefreshTokenPrincipal?.GetClaim(BindingClaim) is { } bound && proved != bound)
                context.Reject(InvalidProof, "This refresh token is bound to a DPoP key: send a proof signed with that key.");
            else if (context.AuthorizationCodePrincipal?.GetClaim(BindingClaim) is { } codeBound && proved != codeBound)
                context.Reject(InvalidProof, "This code was asked for with dpop_jkt: send a proof signed with that key.");
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The tokens of a request with a proof are bound to its key: the access token, and a public client's refresh token.</summary>
    public sealed class BindTokens : IOpenIddictServerHandler<OpenIddictServerEvents.ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ProcessSignInContext>()
            .UseSingletonHandler<BindTokens>()
            .SetOrder(OpenIddictServerHandlers.PrepareRefreshTokenPrincipal.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.ProcessSignInContext context)
        {
            // A bound code or refresh token needs a proof (CheckBoundGrant), so without one there is no binding to renew either.
            if (context.EndpointType != OpenIddictServerEndpointType.Token || context.Transaction.GetProperty<string>(JktProperty) is not { } jkt)
                return ValueTask.CompletedTask;
            if (context.AccessTokenPrincipal is { } access)
                Bind(access, jkt);
            // OpenIddict makes a confidential client authenticate at the token endpoint and refuses credentials from a public one.
            var confidential = !string.IsNullOrEmpty(context.Request.ClientSecret) || !string.IsNullOrEmpty(context.Request.ClientAssertion);
            // Set, or taken away: the new principal is renewed from the code's or refresh token's claims, and a confidential
            // client's code bound with dpop_jkt must not leave its refresh token bound.
            context.RefreshTokenPrincipal?.SetClaim(BindingClaim, confidential ? null : jkt);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A bound access token is announced as token_type DPoP (§5), so the client sends it with that scheme.</summary>
    public sealed class AnnounceTokenType : IOpenIddictServerHandler<OpenIddictServerEvents.ApplyTokenResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ApplyTokenResponseContext>()
            .UseSingletonHandler<AnnounceTokenType>()
            .SetOrder(int.MinValue + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.ApplyTokenResponseContext context)
        {
            if (context.Transaction.GetProperty<string>(JktProperty) is not null && !string.IsNullOrEmpty(context.Response.AccessToken))
                context.Response.TokenType = Scheme;
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>This server's APIs: "Authorization: DPoP token" is read like a bearer token, then checked by <see cref="CheckBinding"/>.</summary>
    public sealed class ExtractDPoPToken : IOpenIddictValidationHandler<OpenIddictValidationEvents.ProcessAuthenticationContext>
    {
        public static OpenIddictValidationHandlerDescriptor Descriptor { get; } = OpenIddictValidationHandlerDescriptor.CreateBuilder<OpenIddictValidationEvents.ProcessAuthenticationContext>()
            .UseSingletonHandler<ExtractDPoPToken>()
            .SetOrder(OpenIddictValidationAspNetCoreHandlers.ExtractAccessTokenFromAuthorizationHeader.Descriptor.Order + 1)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictValidationEvents.ProcessAuthenticationContext context)
        {
            if (!context.ExtractAccessToken || !string.IsNullOrEmpty(context.AccessToken))
                return ValueTask.CompletedTask;
            if (DPoPToken(context.Transaction.GetHttpRequest()) is { } token)
            {
                context.AccessToken = token;
                context.Transaction.SetProperty(SchemeProperty, Scheme);
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Once the token is known valid: a bound token needs the DPoP scheme and a proof for this very request, from its
    /// key (§7); a bearer token sent as DPoP is refused too, as its proof would bind nothing.
    /// </summary>
    public sealed class CheckBinding(TimeProvider time, DPoPNonces nonces) : IOpenIddictValidationHandler<OpenIddictValidationEvents.ProcessAuthenticationContext>
    {
        public static OpenIddictValidationHandlerDescriptor Descriptor { get; } = OpenIddictValidationHandlerDescriptor.CreateBuilder<OpenIddictValidationEvents.ProcessAuthenticationContext>()
            .UseSingletonHandler<CheckBinding>()
            // After VerifiedAccessTokens.Remember: a remembered token is checked here on every request too.
            .SetOrder(OpenIddictValidationHandlers.ValidateAccessToken.Descriptor.Order + 2)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(OpenIddictValidationEvents.ProcessAuthenticationContext context)
        {
            if (context.AccessTokenPrincipal is not { } principal || context.Transaction.GetHttpRequest() is not { } http)
                return;
            if (await CheckUseAsync(principal, context.Transaction.GetProperty<string>(SchemeProperty) is not null, context.AccessToken!, http,
                    context.Options.Issuer, time, nonces, context.CancellationToken) is var (error, description))
                context.Reject(error, description);
        }
    }

    /// <summary>The userinfo endpoint is an API too: it reads "Authorization: DPoP token" like its bearer token.</summary>
    public sealed class ExtractUserInfoDPoPToken : IOpenIddictServerHandler<OpenIddictServerEvents.ExtractUserInfoRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ExtractUserInfoRequestContext>()
            .UseSingletonHandler<ExtractUserInfoDPoPToken>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ExtractAccessToken<OpenIddictServerEvents.ExtractUserInfoRequestContext>.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.ExtractUserInfoRequestContext context)
        {
            if (context.Request is { } request && string.IsNullOrEmpty(request.AccessToken) && DPoPToken(context.Transaction.GetHttpRequest()) is { } token)
            {
                request.AccessToken = token;
                context.Transaction.SetProperty(SchemeProperty, Scheme);
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// In place of OpenIddict's proof-of-possession check, which knows only mTLS's binding and fails on any other. A
    /// bound access token presented to the userinfo endpoint is used, so it needs its proof; at introspection,
    /// revocation or a token exchange it is only named, by a party that checked its proof when it received it.
    /// </summary>
    public sealed class CheckServerTokenUse(TimeProvider time, DPoPNonces nonces) : IOpenIddictServerHandler<OpenIddictServerEvents.ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ValidateTokenContext>()
            .UseSingletonHandler<CheckServerTokenUse>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateProofOfPossession.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(OpenIddictServerEvents.ValidateTokenContext context)
        {
            if (context.IsRejected || context.Principal is not { } principal || JktOf(principal) is not { } bound)
                return;
            if (bound.Length == 0)
            {
                context.Reject(Errors.InvalidToken, "This token's binding is not one this server checks.");
                return;
            }
            if (context.EndpointType != OpenIddictServerEndpointType.UserInfo || context.Transaction.GetHttpRequest() is not { } http)
                return;
            if (await CheckUseAsync(principal, context.Transaction.GetProperty<string>(SchemeProperty) is not null, context.Token!, http,
                    context.Options.Issuer, time, nonces, context.CancellationToken) is var (error, description))
                context.Reject(error, description);
        }
    }

    /// <summary>This server's APIs answer a DPoP request or a proof's fault as RFC 9449 §7.1 says (<see cref="Challenge"/>).</summary>
    public sealed class ChallengeApiRequest : IOpenIddictValidationHandler<OpenIddictValidationEvents.ProcessChallengeContext>
    {
        public static OpenIddictValidationHandlerDescriptor Descriptor { get; } = OpenIddictValidationHandlerDescriptor.CreateBuilder<OpenIddictValidationEvents.ProcessChallengeContext>()
            .UseSingletonHandler<ChallengeApiRequest>()
            .SetOrder(OpenIddictValidationAspNetCoreHandlers.AttachWwwAuthenticateHeader<OpenIddictValidationEvents.ProcessChallengeContext>.Descriptor.Order + 1)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictValidationEvents.ProcessChallengeContext context)
        {
            if (context.Transaction.GetHttpRequest() is { } http)
                Challenge(http.HttpContext.Response, context.Transaction.Response?.Error, context.Transaction.GetProperty<string>(SchemeProperty) is not null);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The userinfo endpoint answers as this server's APIs do (<see cref="Challenge"/>).</summary>
    public sealed class ChallengeUserInfoRequest : IOpenIddictServerHandler<OpenIddictServerEvents.ApplyUserInfoResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ApplyUserInfoResponseContext>()
            .UseSingletonHandler<ChallengeUserInfoRequest>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.AttachWwwAuthenticateHeader<OpenIddictServerEvents.ApplyUserInfoResponseContext>.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.ApplyUserInfoResponseContext context)
        {
            if (context.Transaction.GetHttpRequest() is { } http)
                Challenge(http.HttpContext.Response, context.Response.Error, context.Transaction.GetProperty<string>(SchemeProperty) is not null);
            return ValueTask.CompletedTask;
        }
    }
}
