using System.Text.Json;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Identity.Server.Mfa;
using Identity.Server.Users;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Auth;

/// <summary>
/// The seed's /api/v1/auth/* JSON API as a thin shape over OpenIddict: login, register and refresh are extra token
/// endpoint addresses and logout an extra revocation address. A JSON body becomes a password, refresh or revocation
/// request of the built-in first-party client, OpenIddict validates and issues exactly what it issues at
/// /connect/token (same keys, claims, rotation, reuse detection, revocation), and the answer is written in the
/// seed's shape: the token response plus the user, or the seed's error envelope.
/// </summary>
public static class AuthFacade
{
    public const string ClientId = "identity-auth-api";
    public const string Scopes = "openid profile email roles offline_access identity";
    public static readonly PathString Prefix = "/api/v1/auth";
    public static readonly PathString Login = "/api/v1/auth/login";
    public static readonly PathString Register = "/api/v1/auth/register";
    public static readonly PathString Refresh = "/api/v1/auth/refresh";
    public static readonly PathString Logout = "/api/v1/auth/logout";
    public static readonly PathString MfaVerify = "/api/v1/auth/mfa/verify";

    /// <summary>The seed's login option, kept on the request as it was read from the JSON body.</summary>
    public const string RememberMe = "remember_me";

    const string SubjectProperty = "identity:facade-subject";
    const int MaxBodyBytes = 16 * 1024;

    public static void AddTo(OpenIddictServerBuilder server)
    {
        server.Configure(options =>
        {
            foreach (var path in new[] { Login, Register, Refresh, MfaVerify })
                options.TokenEndpointUris.Add(new Uri(path.Value!.TrimStart('/'), UriKind.Relative));
            options.RevocationEndpointUris.Add(new Uri(Logout.Value!.TrimStart('/'), UriKind.Relative));
        });

        // OpenIddict reads token and revocation requests from forms only: its extraction handler is replaced by one
        // that reads the facade's JSON and hands every other request to the original.
        server.RemoveEventHandler(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractTokenRequestContext>.Descriptor);
        server.RemoveEventHandler(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractRevocationRequestContext>.Descriptor);
        server.AddEventHandler(ExtractRequest<ExtractTokenRequestContext>.Descriptor);
        server.AddEventHandler(ExtractRequest<ExtractRevocationRequestContext>.Descriptor);
        server.Services.AddSingleton<RequireFacadeRequest>();
        server.AddEventHandler(KeepClientBehindFacade.Descriptor);
        server.AddEventHandler(RememberSubject.Descriptor);
        server.AddEventHandler(WriteTokenResponse.Descriptor);
        server.AddEventHandler(WriteRevocationResponse.Descriptor);
    }

    /// <summary>
    /// The seed's remember_me: an auth API sign-in without it gets refresh tokens of the shorter
    /// <see cref="TokenOptions.NotRememberedRefreshTokenLifetime"/>. The lifetime travels in the refresh token, so every
    /// refresh of that sign-in keeps it. Other clients' sign-ins (OAuth, pages) are untouched.
    /// </summary>
    public static System.Security.Claims.ClaimsPrincipal Remembering(OpenIddictRequest request, System.Security.Claims.ClaimsPrincipal principal,
        bool rememberMe, Connect.TokenOptions tokens) =>
        request.ClientId != ClientId || rememberMe ? principal : principal.SetRefreshTokenLifetime(tokens.NotRememberedRefreshTokenLifetime);

    static HttpContext Http(BaseContext context) =>
        context.Transaction.GetHttpRequest()?.HttpContext ?? throw new InvalidOperationException("Not an ASP.NET Core request.");

    static bool IsFacade(BaseContext context) => context.Transaction.GetHttpRequest()?.Path.StartsWithSegments(Prefix) == true;

    /// <summary>
    /// mfa/verify is a token request only when it carries an mfa_token (finishing a login); with a bearer token it
    /// confirms a setup, an ordinary API call that OpenIddict lets through.
    /// </summary>
    static bool IsSetupConfirmation(HttpRequest request) =>
        request.Path == MfaVerify && request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);

    public sealed class RequireFacadeRequest : IOpenIddictServerHandlerFilter<BaseContext>
    {
        public ValueTask<bool> IsActiveAsync(BaseContext context) => new(IsFacade(context));
    }

    /// <summary>
    /// The facade's client has no secret, so anyone can name it: it is good only behind /api/v1/auth, where the auth
    /// rate limits apply. At /connect/token it would be a way to guess passwords around them.
    /// </summary>
    public sealed class KeepClientBehindFacade : IOpenIddictServerHandler<ValidateTokenRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseSingletonHandler<KeepClientBehindFacade>()
            .SetOrder(int.MinValue + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ValidateTokenRequestContext context)
        {
            if (context.ClientId == ClientId && !IsFacade(context))
                context.Reject(Errors.UnauthorizedClient, $"{ClientId} is the auth API's own client: use {Prefix}.");
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>JSON for the facade's addresses, OpenIddict's own form reading for every other request.</summary>
    public sealed class ExtractRequest<TContext> : IOpenIddictServerHandler<TContext> where TContext : BaseValidatingContext
    {
        readonly OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<TContext> forms = new();

        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
            .Import(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<TContext>.Descriptor)
            .UseSingletonHandler<ExtractRequest<TContext>>()
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(TContext context)
        {
            if (!IsFacade(context))
            {
                await forms.HandleAsync(context);
                return;
            }

            var http = Http(context);
            if (IsSetupConfirmation(http.Request))
            {
                context.SkipRequest();
                return;
            }
            var body = await ReadJsonObjectAsync(http);
            if (body.Error is not null)
            {
                context.Reject(Errors.InvalidRequest, body.Error);
                return;
            }

            var path = http.Request.Path;
            var request = new OpenIddictRequest { ClientId = ClientId };
            if (path == Login || path == Register)
            {
                request.GrantType = GrantTypes.Password;
                request.Scope = Scopes;
                request.Username = body.String("email");
                request.Password = body.String("password");
                if (path == Register)
                    request["name"] = body.String("name");
                else
                {
                    var (rememberMe, rememberError) = body.Bool(RememberMe);
                    if (rememberError is not null)
                    {
                        context.Reject(Errors.InvalidRequest, rememberError);
                        return;
                    }
                    request[RememberMe] = rememberMe;
                }
                if (string.IsNullOrWhiteSpace(request.Username) || string.IsNullOrEmpty(request.Password))
                {
                    context.Reject(Errors.InvalidRequest, "email and password are required.");
                    return;
                }
            }
            else if (path == MfaVerify)
            {
                request.GrantType = MfaGrant.Type;
                request.Scope = Scopes;
                request[MfaGrant.MfaToken] = body.String("mfa_token");
                request[MfaGrant.Code] = body.String("token");
                request[MfaGrant.Method] = body.String("method") ?? Mfa.MultiFactor.Totp;
                if (string.IsNullOrEmpty((string?)request[MfaGrant.MfaToken]) || string.IsNullOrEmpty((string?)request[MfaGrant.Code]))
                {
                    context.Reject(Errors.InvalidRequest, "mfa_token and token are required (or a bearer token to confirm a setup).");
                    return;
                }
            }
            else if (Federation.FederationApi.CallbackProvider(path) is { } provider)
            {
                request.GrantType = Federation.FederationGrant.Type;
                request.Scope = Scopes;
                request[Federation.FederationGrant.Provider] = provider;
                request[Federation.FederationGrant.Code] = body.String("code");
                request[Federation.FederationGrant.State] = body.String("state");
                request[Federation.FederationGrant.CodeVerifier] = body.String("code_verifier");
                if (new[] { Federation.FederationGrant.Code, Federation.FederationGrant.State, Federation.FederationGrant.CodeVerifier }
                        .Any(name => string.IsNullOrEmpty((string?)request[name])))
                {
                    context.Reject(Errors.InvalidRequest, "code, state and code_verifier are required.");
                    return;
                }
            }
            else if (path == Refresh || path == Logout)
            {
                var refreshToken = body.String("refresh_token");
                if (string.IsNullOrEmpty(refreshToken))
                {
                    context.Reject(Errors.InvalidRequest, "refresh_token is required.");
                    return;
                }
                if (path == Refresh)
                    (request.GrantType, request.RefreshToken) = (GrantTypes.RefreshToken, refreshToken);
                else
                    (request.Token, request.TokenTypeHint) = (refreshToken, TokenTypeHints.RefreshToken);
            }
            else
            {
                context.Reject(Errors.InvalidRequest, "Unknown address.");
                return;
            }
            context.Transaction.Request = request;
        }
    }

    /// <summary>Keeps the subject of a facade sign-in so the response can carry the user.</summary>
    public sealed class RememberSubject : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .AddFilter<RequireFacadeRequest>()
            .UseSingletonHandler<RememberSubject>()
            .SetOrder(int.MinValue + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ProcessSignInContext context)
        {
            context.Transaction.Properties[SubjectProperty] = context.Principal?.GetClaim(Claims.Subject);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The seed's token response (with the user), or the seed's error envelope.</summary>
    public sealed class WriteTokenResponse(IdentityDbContext db, UserAttributes attributes) : IOpenIddictServerHandler<ApplyTokenResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .AddFilter<RequireFacadeRequest>()
            .UseScopedHandler<WriteTokenResponse>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ProcessJsonResponse<ApplyTokenResponseContext>.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ApplyTokenResponseContext context)
        {
            var http = Http(context);
            var response = context.Response;
            if (response.Error is { } error)
            {
                await WriteErrorAsync(http, error, response.ErrorDescription, (string?)response[MfaGrant.Reason]);
                context.HandleRequest();
                return;
            }

            var subject = context.Transaction.Properties.TryGetValue(SubjectProperty, out var value) ? value as string : null;
            var user = subject is null ? null : await db.Users.FindAsync(subject);
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.Headers.CacheControl = "no-store";
            await http.Response.WriteAsJsonAsync(new FacadeTokenResponse(
                // DPoP when the login came with a proof (DPoP.AnnounceTokenType has set it).
                response.AccessToken!, response.TokenType ?? "Bearer", response.ExpiresIn ?? 0, response.RefreshToken, response.IdToken,
                user is null ? null : await UserView.OfAsync(db, attributes, user)));
            context.HandleRequest();
        }
    }

    /// <summary>Logout answers 204 on success; errors in the seed's envelope.</summary>
    public sealed class WriteRevocationResponse : IOpenIddictServerHandler<ApplyRevocationResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyRevocationResponseContext>()
            .AddFilter<RequireFacadeRequest>()
            .UseSingletonHandler<WriteRevocationResponse>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ProcessJsonResponse<ApplyRevocationResponseContext>.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ApplyRevocationResponseContext context)
        {
            var http = Http(context);
            if (context.Response.Error is { } error)
                await WriteErrorAsync(http, error, context.Response.ErrorDescription, null);
            else
                http.Response.StatusCode = StatusCodes.Status204NoContent;
            context.HandleRequest();
        }
    }

    static Task WriteErrorAsync(HttpContext http, string error, string? description, string? reason)
    {
        var login = http.Request.Path == Login || http.Request.Path == Register;
        var result = (error, reason) switch
        {
            (_, "mfa_locked") => ApiErrors.Result(http, 403, "FORBIDDEN", description ?? "MFA is locked.", new { reason }),
            (_, "invalid_code" or "invalid_mfa_token") => ApiErrors.Result(http, 401, "INVALID_CREDENTIALS", description ?? "The code is not valid.", new { reason }),
            (Errors.InvalidGrant, _) when login => ApiErrors.Result(http, 401, "INVALID_CREDENTIALS", "The provided credentials are invalid."),
            (Errors.InvalidGrant or Errors.InvalidToken, _) => ApiErrors.Result(http, 401, "UNAUTHORIZED", "The refresh token is invalid, expired or revoked."),
            _ => ApiErrors.Result(http, 400, "INVALID_REQUEST", description ?? "Malformed request body or parameters.", new { reason = error }),
        };
        return result.ExecuteAsync(http);
    }

    sealed record JsonBody(JsonElement Root, string? Error)
    {
        public string? String(string name) =>
            Root.ValueKind == JsonValueKind.Object && Root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

        /// <summary>An optional boolean: false when absent or null, an error when it is anything but true or false.</summary>
        public (bool Value, string? Error) Bool(string name) =>
            Root.ValueKind != JsonValueKind.Object || !Root.TryGetProperty(name, out var value) ? (false, null) : value.ValueKind switch
            {
                JsonValueKind.True => (true, null),
                JsonValueKind.False or JsonValueKind.Null => (false, null),
                _ => (false, $"{name} must be true or false."),
            };
    }

    static async Task<JsonBody> ReadJsonObjectAsync(HttpContext http)
    {
        if (http.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
            return new(default, "The body must be JSON (Content-Type: application/json).");
        if (http.Request.ContentLength > MaxBodyBytes)
            return new(default, $"The body must be at most {MaxBodyBytes} bytes.");

        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
                return new(default, $"The body must be at most {MaxBodyBytes} bytes.");
            buffer.Write(chunk, 0, read);
        }
        try
        {
            var root = JsonDocument.Parse(buffer.ToArray()).RootElement;
            if (!JsonText.IsWellFormed(root))
                return new(default, "The body is not valid JSON: a string holds an unpaired surrogate.");
            return root.ValueKind == JsonValueKind.Object ? new(root, null) : new(root, "The body must be a JSON object.");
        }
        catch (JsonException)
        {
            return new(default, "The body is not valid JSON.");
        }
    }
}

public sealed record FacadeTokenResponse(string AccessToken, string TokenType, long ExpiresIn, string? RefreshToken, string? IdToken, UserView? User);
