using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Identity.Server.Auth;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Mfa;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Client;
using OpenIddict.Client.AspNetCore;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Federation;

/// <summary>
/// External sign-in, for browsers (the login page's buttons) and for first-party apps (the seed's
/// /api/v1/auth/oauth/{provider} pair), and the user's own list of linked providers.
/// </summary>
public static class FederationApi
{
    /// <summary>Where the login page picks up a finished external sign-in.</summary>
    const string LoginPageHandler = "/Account/Login?handler=External";
    /// <summary>The key under which ASP.NET Core Identity keeps the provider of an external sign-in.</summary>
    const string LoginProviderKey = "LoginProvider";
    static readonly PathString OAuthPrefix = AuthFacade.Prefix + "/oauth";
    static readonly TimeSpan StateLifetime = TimeSpan.FromMinutes(10);

    public sealed record StartResponse(string AuthorizationUrl, string State, long ExpiresIn);
    public sealed record CallbackRequest(string Code, string State, string CodeVerifier);
    public sealed record LoginView(string Provider, string DisplayName);
    public sealed record LoginsResponse(IReadOnlyList<LoginView> Logins, bool HasPassword);

    /// <summary>The provider of a callback address of the auth API, null for any other address.</summary>
    public static string? CallbackProvider(PathString path) =>
        path.StartsWithSegments(OAuthPrefix, out var rest) && rest.Value is { } tail && tail.EndsWith("/callback", StringComparison.Ordinal) &&
        tail.Split('/', StringSplitOptions.RemoveEmptyEntries) is [var provider, "callback"]
            ? provider
            : null;

    /// <summary>Each provider's callback is a token endpoint address: OpenIddict issues the tokens it answers with.</summary>
    public static WebApplicationBuilder AddFederationApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<OpenIddictServerOptions>().Configure<ExternalProviders>((server, providers) =>
        {
            foreach (var provider in providers.All)
                server.TokenEndpointUris.Add(new Uri($"{OAuthPrefix.Value!.TrimStart('/')}/{provider.Name}/callback", UriKind.Relative));
        });
        return builder;
    }

    public static IEndpointRouteBuilder MapFederation(this IEndpointRouteBuilder app)
    {
        var browser = app.MapGroup("").ExcludeFromDescription();
        browser.MapGet("/Account/External/{provider}", Challenge);
        browser.MapMethods(FederationSetup.CallbackPrefix + "{provider}", ["GET", "POST"], OpenIddictCallback);

        var oauth = app.MapGroup(OAuthPrefix).WithTags("Auth");
        oauth.MapGet("/{provider}", Start).WithSummary("Start a sign-in with an external provider (first-party apps)");
        oauth.MapPost("/{provider}/callback", Callback).Accepts<CallbackRequest>("application/json")
            .Produces<FacadeTokenResponse>().Produces<AuthApi.MfaRequiredResponse>()
            .WithSummary("Finish an external sign-in: the provider's code for this server's tokens");

        var logins = app.MapGroup(AuthFacade.Prefix + "/me/logins").WithTags("Auth").RequireAuthorization(ServerApi.Policy);
        logins.MapGet("", ListLogins).WithSummary("The external providers linked to the calling user");
        logins.MapDelete("/{provider}", RemoveLogin).WithSummary("Unlink an external provider (never the last way to sign in)");
        return app;
    }

    /// <summary>
    /// Sends the browser to the provider; it comes back to the login page through the external cookie. A provider
    /// that cannot be reached (its metadata, say) sends the user back to the login page, not to an error page.
    /// </summary>
    static async Task Challenge(string provider, string? returnUrl, HttpContext http, ExternalProviders providers, ILoggerFactory logs)
    {
        if (providers.Find(provider) is not { } found)
        {
            http.Response.Redirect("/Account/Login");
            return;
        }
        // The login page accepts only a local return URL when it finally redirects, as for password sign-ins.
        // A provider that cannot be reached leaves the user on the login page, still on the way back to the app.
        var back = Uri.EscapeDataString(returnUrl ?? "/");
        await ChallengeAsync(http, found, LoginPageHandler + "&ReturnUrl=" + back, "/Account/Login?error=external&ReturnUrl=" + back, logs);
    }

    /// <summary>
    /// Sends the browser to <paramref name="found"/>; its answer comes back through the external cookie to
    /// <paramref name="back"/> (the login page, or the linked accounts page), or to <paramref name="failed"/> when the
    /// provider cannot be reached.
    /// </summary>
    public static async Task ChallengeAsync(HttpContext http, ExternalProvider found, string back, string failed, ILoggerFactory logs)
    {
        var properties = new AuthenticationProperties { RedirectUri = back };
        properties.Items[LoginProviderKey] = found.Name;
        var scheme = found.Name;
        try
        {
            if (found.Kind is ProviderKind.GitHub or ProviderKind.Oidc)
            {
                // OpenIddict answers a challenge it cannot make with an error page of its own: ask for the provider's
                // metadata first (cached after the first success), so a failure lands here instead.
                await http.RequestServices.GetRequiredService<OpenIddictClientService>().GetServerConfigurationByProviderNameAsync(found.Name, http.RequestAborted);
                properties.Items[OpenIddictClientAspNetCoreConstants.Properties.ProviderName] = found.Name;
                scheme = OpenIddictClientAspNetCoreDefaults.AuthenticationScheme;
            }
            await http.ChallengeAsync(scheme, properties);
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException or IOException or OpenIddictExceptions.ProtocolException
                                   && !http.Response.HasStarted)
        {
            logs.CreateLogger(typeof(FederationApi)).LogWarning(e, "The sign-in with {Provider} could not start.", found.Name);
            http.Response.Clear();
            http.Response.Redirect(failed);
        }
    }

    /// <summary>
    /// The OpenIddict client has checked the provider's answer (state, code, tokens, userinfo): its principal goes into
    /// the external cookie, where the Google and Microsoft handlers put theirs.
    /// </summary>
    static async Task<IResult> OpenIddictCallback(string provider, HttpContext http, ExternalProviders providers, SecurityEvents events,
        IHttpClientFactory httpClients)
    {
        // Only GitHub and OpenID providers come back here; without one the OpenIddict client is not even registered.
        if (providers.Find(provider) is not { Kind: ProviderKind.GitHub or ProviderKind.Oidc })
            return Results.NotFound();
        var result = await http.AuthenticateAsync(OpenIddictClientAspNetCoreDefaults.AuthenticationScheme);
        var name = result.Principal?.GetClaim(Claims.Private.ProviderName);
        var identity = result.Succeeded && name == provider && providers.Find(name) is not null ? ExternalIdentity.From(name, result.Principal!) : null;
        if (identity is null)
        {
            await events.RaiseNowAsync(EventTypes.AuthFailed, null, new { reason = "external_sign_in_failed", provider }, success: false);
            return Results.Redirect("/Account/Login?error=external");
        }
        identity = await GitHubEmails.CompleteAsync(identity, httpClients.CreateClient(UpstreamClient.HttpClientName),
            result.Properties?.GetTokenValue(OpenIddictClientAspNetCoreConstants.Tokens.BackchannelAccessToken), http.RequestAborted);

        // The redirect address is the one Challenge set: it comes back inside OpenIddict's encrypted state.
        var properties = new AuthenticationProperties { RedirectUri = result.Properties?.RedirectUri ?? LoginPageHandler };
        properties.Items[LoginProviderKey] = identity.Provider;
        await http.SignInAsync(IdentityConstants.ExternalScheme, identity.ToPrincipal(), properties);
        return Results.Redirect(properties.RedirectUri);
    }

    /// <summary>The external sign-in the login page picks up: the provider and what it said of the user.</summary>
    public static async Task<ExternalIdentity?> ReadExternalCookieAsync(HttpContext http)
    {
        var result = await http.AuthenticateAsync(IdentityConstants.ExternalScheme);
        return result.Succeeded && result.Properties?.Items.TryGetValue(LoginProviderKey, out var provider) == true && provider is not null
            ? ExternalIdentity.From(provider, result.Principal!)
            : null;
    }

    static async Task<IResult> Start(string provider, HttpContext http, ExternalProviders providers, FederationOptions options, UpstreamClient upstream,
        IdentityDbContext db, TimeProvider time, ILoggerFactory logs,
        [Microsoft.AspNetCore.Mvc.FromQuery(Name = "redirect_uri")] string? redirectUri,
        [Microsoft.AspNetCore.Mvc.FromQuery(Name = "code_challenge")] string? codeChallenge,
        [Microsoft.AspNetCore.Mvc.FromQuery(Name = "code_challenge_method")] string? codeChallengeMethod,
        [Microsoft.AspNetCore.Mvc.FromQuery(Name = "state")] string? clientState)
    {
        if (providers.Find(provider) is not { } found)
            return ApiErrors.Result(http, 404, "NOT_FOUND", $"No external provider named '{provider}' is configured.");
        if (string.IsNullOrEmpty(redirectUri) || !options.RedirectUris.Contains(redirectUri, StringComparer.Ordinal))
            return Invalid(http, "redirect_uri must be one of the addresses registered under Identity:ExternalProviders:RedirectUris.", "redirect_uri");
        // RFC 9700: PKCE with S256 on every code flow; the verifier comes back to the callback, never in a URL.
        if (codeChallengeMethod != CodeChallengeMethods.Sha256)
            return Invalid(http, "code_challenge_method must be S256.", "code_challenge_method");
        if (codeChallenge is not { Length: 43 } || !codeChallenge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            return Invalid(http, "code_challenge must be the base64url SHA-256 of the code verifier (43 characters).", "code_challenge");
        if (clientState is { Length: > 512 })
            return Invalid(http, "state must be at most 512 characters.", "state");

        UpstreamClient.Endpoints endpoints;
        try
        {
            endpoints = await upstream.EndpointsAsync(found, http.RequestAborted);
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException or TaskCanceledException or OpenIddictExceptions.ProtocolException)
        {
            logs.CreateLogger(typeof(FederationApi)).LogWarning(e, "The metadata of {Provider} could not be read.", found.Name);
            return ApiErrors.Result(http, 502, ProviderUnavailable, UnavailableMessage(found), new { reason = UpstreamClient.Unavailable });
        }

        // The state sent to the provider is this server's: unguessable, single-use, bound to this request.
        var state = OneTimeTokens.New();
        var now = time.GetUtcNow();
        await db.FederationStates.Where(s => s.ExpiresAt < now).ExecuteDeleteAsync();
        db.FederationStates.Add(new FederationState
        {
            Id = OneTimeTokens.Digest(state), Provider = found.Name, RedirectUri = redirectUri, CodeChallenge = codeChallenge, ExpiresAt = now + StateLifetime,
        });
        await db.SaveChangesAsync();
        return Results.Ok(new StartResponse(UpstreamClient.AuthorizationUrl(endpoints, redirectUri, state, codeChallenge), state, (long)StateLifetime.TotalSeconds));
    }

    /// <summary>
    /// A token endpoint address (OpenIddict has read the JSON body as the federation grant): spends the state, checks
    /// PKCE, redeems the code with the provider, then signs the user in as any login would, second factor included.
    /// </summary>
    static async Task<IResult> Callback(HttpContext http, ExternalProviders providers, UpstreamClient upstream, ExternalAccounts accounts,
        IdentityDbContext db, TimeProvider time, PrincipalFactory factory, MultiFactor mfa, SecurityEvents events, SignInManager<User> signIn)
    {
        // Only a configured provider's callback is a token endpoint address; any other reaches here with no request.
        if (http.GetOpenIddictServerRequest() is not { } request || providers.Find((string?)request[FederationGrant.Provider]) is not { } provider)
            return ApiErrors.Result(http, 404, "NOT_FOUND", "No such external provider is configured.");

        var hash = OneTimeTokens.Digest((string)request[FederationGrant.State]!);
        var now = time.GetUtcNow();
        var spent = await db.FederationStates
            .Where(s => s.Id == hash && s.Provider == provider.Name && s.ConsumedAt == null && s.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.ConsumedAt, now));
        if (spent != 1)
            return await FailAsync(http, events, provider, 400, "INVALID_REQUEST", "state is unknown, expired or already used.", "invalid_state");
        var started = await db.FederationStates.AsNoTracking().SingleAsync(s => s.Id == hash);

        var verifier = (string)request[FederationGrant.CodeVerifier]!;
        var challenge = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(challenge), Encoding.ASCII.GetBytes(started.CodeChallenge)))
            return await FailAsync(http, events, provider, 400, "INVALID_REQUEST", "code_verifier does not match the code_challenge.", "invalid_code_verifier");

        ExternalIdentity? identity;
        string? error;
        try
        {
            var endpoints = await upstream.EndpointsAsync(provider, http.RequestAborted);
            (identity, error) = await upstream.RedeemAsync(provider, endpoints, (string)request[FederationGrant.Code]!, started.RedirectUri, verifier, http.RequestAborted);
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException or TaskCanceledException or OpenIddictExceptions.ProtocolException)
        {
            (identity, error) = (null, UpstreamClient.Unavailable);
        }
        if (identity is null)
            return error == UpstreamClient.Unavailable
                ? await FailAsync(http, events, provider, 502, ProviderUnavailable, UnavailableMessage(provider), error)
                : await FailAsync(http, events, provider, 401, "INVALID_CREDENTIALS", $"{provider.DisplayName} did not accept the code.", error);

        var resolution = await accounts.ResolveAsync(identity);
        switch (resolution.Outcome)
        {
            case ExternalAccounts.Outcome.LinkRequired:
                return ApiErrors.Result(http, 409, "CONFLICT",
                    $"An account with this email exists. Sign in with its password, then link {provider.DisplayName} from the account.", new { reason = "link_required" });
            case ExternalAccounts.Outcome.NoEmail:
                return ApiErrors.Result(http, 400, "INVALID_REQUEST", $"{provider.DisplayName} did not share an email address.", new { reason = "email_required" });
            case ExternalAccounts.Outcome.Refused when resolution.User is { } refused && Users.Accounts.AwaitsVerification(signIn, refused):
                return ApiErrors.Result(http, 403, "FORBIDDEN", "The email address is not verified yet: follow the link sent to it.",
                    new { reason = "email_not_verified" });
            case ExternalAccounts.Outcome.Refused:
                return ApiErrors.Result(http, 403, "FORBIDDEN", "This account cannot sign in.", new { reason = "account_unavailable" });
        }

        var user = resolution.User!;
        if (await AuthApi.MfaRequiredResponse.ForAsync(mfa, user, request.ClientId, identityProvider: provider.Name) is { } held)
            return held;

        await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user), new { amr = new[] { AuthenticationMethods.Federated }, provider = provider.Name, source = "auth_api" });
        return Results.SignIn(await factory.ForUserAsync(user, request.GetScopes(), [AuthenticationMethods.Federated], provider.Name),
            authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    static async Task<IResult> ListLogins(ClaimsPrincipal principal, UserManager<User> users, ExternalProviders providers, HttpContext http)
    {
        if (await users.GetUserAsync(principal) is not { } user)
            return ApiErrors.NotFound(http);
        var logins = await users.GetLoginsAsync(user);
        return Results.Ok(new LoginsResponse(
            logins.Select(l => new LoginView(l.LoginProvider, providers.Find(l.LoginProvider)?.DisplayName ?? l.LoginProvider)).ToList(),
            await users.HasPasswordAsync(user)));
    }

    static async Task<IResult> RemoveLogin(string provider, ClaimsPrincipal principal, UserManager<User> users, ExternalAccounts accounts, HttpContext http)
    {
        if (await users.GetUserAsync(principal) is not { } user)
            return ApiErrors.NotFound(http);
        return await accounts.UnlinkAsync(user, provider) switch
        {
            ExternalAccounts.Unlinked.Removed => Results.NoContent(),
            ExternalAccounts.Unlinked.LastWayIn => ApiErrors.Result(http, 409, "CONFLICT",
                "This is the account's only way to sign in: set a password or link another provider first.", new { reason = "last_login" }),
            _ => ApiErrors.NotFound(http),
        };
    }

    static async Task<IResult> FailAsync(HttpContext http, SecurityEvents events, ExternalProvider provider, int status, string code, string message, string? reason)
    {
        await events.RaiseNowAsync(EventTypes.AuthFailed, null, new { reason, provider = provider.Name, source = "auth_api" }, success: false);
        return ApiErrors.Result(http, status, code, message, new { reason });
    }

    /// <summary>
    /// The provider is down or failing: a 502 with a code of its own rather than the seed's INTERNAL_ERROR (a 500, this
    /// server's own fault) or INVALID_CREDENTIALS (the user's): the app should offer to try again later.
    /// </summary>
    const string ProviderUnavailable = "PROVIDER_UNAVAILABLE";

    static string UnavailableMessage(ExternalProvider provider) => $"{provider.DisplayName} could not be reached; try again later.";

    static IResult Invalid(HttpContext http, string message, string field) => ApiErrors.Result(http, 400, "INVALID_REQUEST", message, new { field });

}
