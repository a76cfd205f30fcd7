using System.Security.Claims;
using System.Text.Json;
using Identity.Server.Account;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Mfa;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// The passthrough endpoints of the OpenIddict server. OpenIddict has validated the request (client, redirect_uri,
/// PKCE, scopes) before these run; they decide who the user is and hand a principal back to OpenIddict.
/// </summary>
public static class ConnectEndpoints
{
    const string ConsentField = "consent";

    public static IEndpointRouteBuilder MapConnect(this IEndpointRouteBuilder app)
    {
        // The protocol endpoints are described by discovery, not by the OpenAPI document.
        var connect = app.MapGroup("/connect").ExcludeFromDescription();
        connect.MapMethods("/authorize", ["GET", "POST"], Authorize);
        connect.MapPost("/token", Exchange);
        connect.MapMethods("/userinfo", ["GET", "POST"], UserInfo);
        connect.MapMethods("/endsession", ["GET", "POST"], EndSession);
        return app;
    }

    static async Task<IResult> Authorize(HttpContext http, UserManager<User> users, IOpenIddictApplicationManager applications,
        IOpenIddictAuthorizationManager authorizations, PrincipalFactory factory, IAntiforgery antiforgery, SecurityEvents events, TokenOptions tokens,
        MultiFactor factors, Federation.ExternalProviders providers)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID Connect request.");
        var session = await http.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var user = session.Succeeded ? await users.GetUserAsync(session.Principal) : null;

        // OpenIddict accepts create only while registration is open (ConnectSetup). Back here once signed up, without it.
        if (request.HasPromptValue(PromptValues.Create))
            return request.HasPromptValue(PromptValues.None)
                ? Forbid(Errors.InvalidRequest, "prompt=none cannot be combined with create, which shows the registration page.")
                : Results.Redirect("/Account/Register?ReturnUrl=" + Uri.EscapeDataString(
                http.Request.PathBase + http.Request.Path + QueryString.Create(RequestParameters(http, Parameters.Prompt))));

        var application = await applications.FindByClientIdAsync(request.ClientId!)
            ?? throw new InvalidOperationException("The client was validated by OpenIddict but no longer exists.");
        var minimum = await AuthenticationContext.MinimumOfAsync(applications, application);
        var amr = session.Principal?.FindAll(Claims.AuthenticationMethodReference).Select(c => c.Value).ToList() ?? [];
        if (user is null || (!LoggedInForThisRequest(http, session, request) && (request.HasPromptValue(PromptValues.Login) || IsTooOld(session, request, tokens) ||
            await AuthenticationContext.StepUpNeededAsync(request, minimum, amr, user, users, factors))))
        {
            if (request.HasPromptValue(PromptValues.None))
                return Forbid(Errors.LoginRequired, "The user is not logged in.");

            // Back to this endpoint after login, without prompt=login, max_age or acr_values, so the login just made is
            // not asked for again (with max_age=0 it would be, forever); the identity token's auth_time and acr tell the
            // client when it was and how strong.
            // A pushed request or a request object keeps them inside (request_uri, request), and a client's minimum_acr
            // stays: each comes back with a sealed note of when login was asked, which stands for that login.
            var back = http.Request.PathBase + http.Request.Path + QueryString.Create(RequestParameters(http, Parameters.Prompt, Parameters.MaxAge, Parameters.AcrValues, LoginAskedField)
                .Append(new(LoginAskedField, LoginAskedProtector(http).Protect(SealedRequestOf(http, request) + "\n" + DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                    TimeSpan.FromHours(1)))));
            return ToLogin(request, back, providers);
        }

        // The client's minimum is not voluntary: a login just made that still falls short (phishing resistance asked
        // of an account without a passkey) goes back to the app as an error, telling the user what to set up.
        if (minimum is { } floor && !AuthenticationContext.Meets(amr, floor))
            return Forbid(Errors.UnmetAuthenticationRequirements,
                $"This app asks for a sign-in with {AuthenticationContext.WhatItTakes(floor)}: set it up in your account, then sign in again.");

        if (await applications.HasConsentTypeAsync(application, ConsentTypes.Explicit))
        {
            var consented = await authorizations.FindAsync(user.Id, await applications.GetIdAsync(application),
                Statuses.Valid, AuthorizationTypes.Permanent, request.GetScopes()).AnyAsync();
            var decision = http.Request.HasFormContentType ? http.Request.Form[ConsentField].ToString() : "";

            if (decision is "accept" or "deny")
            {
                // The decision must come from our consent page in this user's browser, not from a forged form.
                if (!await antiforgery.IsRequestValidAsync(http))
                    return Forbid(Errors.AccessDenied, "The consent form has expired; try again.");
                if (decision == "deny")
                    return Forbid(Errors.AccessDenied, "The user denied the request.");

                var consentPrincipal = await factory.ForUserAsync(user, request.GetScopes(), []);
                await authorizations.CreateAsync(consentPrincipal, user.Id, (await applications.GetIdAsync(application))!,
                    AuthorizationTypes.Permanent, request.GetScopes());
                await events.RaiseNowAsync(EventTypes.ConsentGranted, SecurityEvents.Subject.Of(user),
                    new { client = request.ClientId, scopes = request.GetScopes().Order(StringComparer.Ordinal) });
            }
            else if (!consented || request.HasPromptValue(PromptValues.Consent))
            {
                if (request.HasPromptValue(PromptValues.None))
                    return Forbid(Errors.ConsentRequired, "Interactive consent is required.");
                // The page is told the scopes to show: a pushed request (RFC 9126) or a request object (RFC 9101) has
                // them inside, and a scope beside an object is not the one asked for.
                var parameters = RequestParameters(http, ConsentField, Parameters.Scope).Append(new(Parameters.Scope, request.Scope)).ToList();
                return Results.Redirect("/Account/Consent" + QueryString.Create(parameters));
            }
        }

        // No authorization id is attached: OpenIddict creates an ad-hoc authorization per sign-in, which is the
        // session its tokens belong to (and the chain revoked on refresh token reuse).
        var principal = await factory.ForUserAsync(user, request.GetScopes(), session.Principal!.FindAll(Claims.AuthenticationMethodReference).Select(c => c.Value),
            session.Principal.FindFirst(ClaimDestinations.IdentityProvider)?.Value, AuthenticatedAt(session),
            session.Principal.FindFirst(ClaimDestinations.SessionId)?.Value);
        return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>
    /// The token endpoint; also behind the auth API's refresh and MFA verify addresses. Each grant asks for the
    /// services it uses, when it runs: building the user and sign-in managers for a client_credentials request
    /// (which needs neither) cost a sixth of it.
    /// </summary>
    internal static async Task<IResult> Exchange(HttpContext http, IServiceProvider services)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID Connect request.");

        if (request.IsClientCredentialsGrantType())
        {
            // OpenIddict lets any client ask for openid; here there is no user for an identity token to be about.
            if (request.HasScope(Scopes.OpenId))
                return Forbid(Errors.InvalidScope, "The openid scope needs a user; client credentials has none.");
            var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
            var application = await applications.FindByClientIdAsync(request.ClientId!)
                ?? throw new InvalidOperationException("The client was validated by OpenIddict but no longer exists.");
            return SignIn(PrincipalFactory.ForClient(services.GetRequiredService<ScopeResources>(), request.ClientId!,
                await applications.GetDisplayNameAsync(application), request.GetScopes()));
        }

        var users = services.GetRequiredService<UserManager<User>>();
        var factory = services.GetRequiredService<PrincipalFactory>();
        // The code, the refresh token or the approved device code carries the sign-in; the user is checked again.
        if (request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType() || request.IsDeviceCodeGrantType())
        {
            // One connection for the grant's statements (the user, their memberships, then the redeem of the code or
            // token): EF Core would open and close it around each. It closes as the request's context is returned.
            await services.GetRequiredService<IdentityDbContext>().Database.OpenConnectionAsync();
            var previous = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal!;
            // Its own expiry already stops at the sign-in's end; this catches tokens from before a shorter maximum was set.
            if (request.IsRefreshTokenGrantType() && SessionMaxLifetime.EndOf(previous, services.GetRequiredService<TokenOptions>()) <= DateTimeOffset.UtcNow)
                return Forbid(Errors.InvalidGrant, "The sign-in has lasted as long as a sign-in may: sign in again.");
            var user = await factory.FindUserAsync(previous.GetClaim(Claims.Subject)!);
            if (!await Users.Accounts.MaySignInAsync(services.GetRequiredService<SignInManager<User>>(), user))
                return Forbid(Errors.InvalidGrant, "The token is no longer valid.");
            return SignIn(await factory.RenewAsync(previous, user!));
        }

        if (request.IsTokenExchangeGrantType())
            return await TokenExchange.ExchangeAsync(http, request, services, factory, users);

        var mfa = services.GetRequiredService<MultiFactor>();
        var events = services.GetRequiredService<SecurityEvents>();
        if (request.IsPasswordGrantType())
        {
            var (user, lockedUntil, retryAfter, awaitsVerification, mustChangePassword) = await PasswordCheck.SignInAsync(users, services.GetRequiredService<SignInManager<User>>(), events,
                services.GetRequiredService<IdentityDbContext>(), services.GetRequiredService<FailedSignIns>(), request.Username, request.Password);
            if (retryAfter is { } wait)
            {
                Hosting.RateLimits.SetRetryAfter(http, wait);
                return Forbid(Errors.InvalidGrant, "Too many failed sign-ins from this network; try again later.", "too_many_attempts");
            }
            if (awaitsVerification)
                return Forbid(Errors.InvalidGrant, "The account's email address is not verified yet: follow the link sent to it.", "email_not_verified");
            if (mustChangePassword is not null)
                return Forbid(Errors.InvalidGrant, "The password is temporary: sign in on the login page to choose a new one.", "password_change_required");
            if (user is null)
                return Forbid(Errors.InvalidGrant, lockedUntil is null ? "The username or password is invalid."
                    : Users.Accounts.IsDeactivation(lockedUntil) ? "The account is disabled." : "The account is locked.");
            switch (await mfa.NextStepAsync(user, await AuthenticationContext.RequiresSecondFactorAsync(services.GetRequiredService<IOpenIddictApplicationManager>(), request.ClientId)))
            {
                case MultiFactor.Step.Code:
                    return MfaRequired(await mfa.ChallengeAsync(user, request.ClientId), await mfa.LoginMethodsAsync(user.Id));
                case MultiFactor.Step.Enrollment:
                    var (token, setup) = await mfa.EnrollAsync(user, request.ClientId);
                    return MfaRequired(token, [MultiFactor.Totp], setup);
            }
            await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user), new { amr = new[] { AuthenticationMethods.Password }, client = request.ClientId });
            return SignIn(await factory.ForUserAsync(user, request.GetScopes(), [AuthenticationMethods.Password]));
        }

        if (request.GrantType == MfaGrant.Type)
        {
            var (outcome, user, identityProvider, rememberMe) = await mfa.CompleteAsync((string?)request[MfaGrant.MfaToken], request.ClientId,
                (string?)request[MfaGrant.Method], (string?)request[MfaGrant.Code]);
            if (outcome == MultiFactor.Outcome.Accepted)
                await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user!),
                    new { amr = AuthenticationMethods.WithSecondFactor(identityProvider), provider = identityProvider, client = request.ClientId });
            return outcome switch
            {
                MultiFactor.Outcome.Accepted => SignIn(Auth.AuthFacade.Remembering(request, await factory.ForUserAsync(user!, request.GetScopes(),
                    AuthenticationMethods.WithSecondFactor(identityProvider), identityProvider), rememberMe, services.GetRequiredService<TokenOptions>())),
                MultiFactor.Outcome.Locked => Forbid(Errors.InvalidGrant, "Too many wrong codes: MFA is locked for a while.", "mfa_locked"),
                MultiFactor.Outcome.Rejected => Forbid(Errors.InvalidGrant, "The code is not valid.", "invalid_code"),
                _ => Forbid(Errors.InvalidGrant, "The mfa_token is invalid, expired or already used.", "invalid_mfa_token"),
            };
        }

        return Forbid(Errors.UnsupportedGrantType, "The grant type is not supported.");
    }

    static async Task<IResult> UserInfo(HttpContext http, UserManager<User> users, PrincipalFactory factory)
    {
        var token = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal!;
        var user = await users.FindByIdAsync(token.GetClaim(Claims.Subject) ?? "");
        if (user is null)
            return Results.Challenge(ErrorProperties(Errors.InvalidToken, "The token does not belong to a user."),
                [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

        // Userinfo answers exactly what an identity token would carry for the same scopes.
        var principal = await factory.ForUserAsync(user, token.GetScopes(), token.GetClaims(Claims.AuthenticationMethodReference));
        return Results.Json(principal.Claims
            .Where(c => c.HasDestination(Destinations.IdentityToken) && c.Type != Claims.AuthenticationMethodReference)
            .ToDictionary(c => c.Type, ClaimValue, StringComparer.Ordinal));
    }

    static async Task EndSession(HttpContext http, UserManager<User> users, SecurityEvents events, Sessions.SessionStore sessions, IAntiforgery antiforgery,
        IdentityDbContext db, IOpenIddictApplicationManager applications, IDataProtectionProvider protection)
    {
        var user = await users.GetUserAsync(http.User);
        // The app proves the request is its own with an identity token of this user (validated by OpenIddict).
        var hint = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        var fromTheApp = hint?.GetClaim(Claims.Subject) is { } subject && (user is null || user.Id == subject);
        // Without that proof a link on any site could sign the user out: ask first (OIDC RP-Initiated Logout 2).
        if (user is not null && !fromTheApp &&
            !(http.Request.HasFormContentType && http.Request.Form["confirm"] == "yes" && await antiforgery.IsRequestValidAsync(http)))
        {
            http.Response.Redirect("/Account/Logout" + QueryString.Create(RequestParameters(http, "confirm")));
            return;
        }

        if (user is not null)
            await events.RaiseNowAsync(EventTypes.AuthLogout, SecurityEvents.Subject.Of(user), new { source = "end_session" });
        // Every app signed in through this browser session is signed out too (single logout): their sessions end, so
        // their refresh tokens stop working, and the ones that asked for it hear so through back-channel logout, and
        // through front-channel logout on the page that follows.
        IReadOnlyList<string> frames = [];
        if (user is not null && http.User.FindFirst(ClaimDestinations.SessionId)?.Value is { } sid)
        {
            frames = await Sessions.FrontchannelLogout.FramesAsync(db, applications, user.Id, sid,
                Sessions.BackchannelLogout.IssuerOf(http, http.Features.Get<OpenIddictServerAspNetCoreFeature>()!.Transaction!.Options));
            await sessions.RevokeBrowserSessionAsync(user.Id, sid);
        }
        // The sign-in the identity token names ends too, so its refresh token stops working, as signing out promises.
        if (fromTheApp && hint is not null && hint.GetAuthorizationId() is { } session)
            await sessions.RevokeAsync(hint.GetClaim(Claims.Subject)!, session);
        await http.SignOutAsync(IdentityConstants.ApplicationScheme);
        if (frames.Count > 0)
        {
            // The apps' pages load first; then the browser comes back here, signed out and without the identity token
            // (its session has ended), and OpenIddict checks the post_logout_redirect_uri again and sends it there.
            var next = "/connect/endsession" + QueryString.Create(RequestParameters(http, "confirm", Parameters.IdTokenHint));
            http.Response.Redirect("/Account/SignedOut?logout=" + Uri.EscapeDataString(
                Sessions.FrontchannelLogout.Protect(protection, new(frames, next))));
            return;
        }
        // OpenIddict redirects to post_logout_redirect_uri when it is registered for the client, else to "/".
        await http.SignOutAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, new AuthenticationProperties { RedirectUri = "/" });
    }

    // The provider an app asks for (idp_hint), and Keycloak's name for it, taken too so its apps need no change.
    const string IdentityProviderHint = "idp_hint", KeycloakIdentityProviderHint = "kc_idp_hint";

    /// <summary>
    /// Where a login is asked for: the provider the app names in idp_hint (Keycloak's kc_idp_hint, Auth0's connection)
    /// when it is one of the server's, skipping the login page; else the login page, with the email of login_hint
    /// (OIDC Core §3.1.2.1) filled in.
    /// </summary>
    static IResult ToLogin(OpenIddictRequest request, string back, Federation.ExternalProviders providers)
    {
        var hint = (string?)request[IdentityProviderHint] ?? (string?)request[KeycloakIdentityProviderHint];
        if (providers.Find(hint) is { } provider)
            return Results.Redirect($"/Account/External/{Uri.EscapeDataString(provider.Name)}?returnUrl={Uri.EscapeDataString(back)}");
        return Results.Redirect("/Account/Login" + QueryString.Create([new("ReturnUrl", back),
            .. request.LoginHint is { Length: > 0 and <= 256 } loginHint ? [new KeyValuePair<string, string?>("login_hint", loginHint)] : Array.Empty<KeyValuePair<string, string?>>()]));
    }

    internal const string LoginAskedField = "login_asked";

    static ITimeLimitedDataProtector LoginAskedProtector(HttpContext http) =>
        http.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector("Identity.Connect.LoginAsked").ToTimeLimitedDataProtector();

    /// <summary>
    /// What names a request for the note of its login: its request_uri, its request object's digest, or the digest of its
    /// parameters as they come back (without those the way back leaves out, and the consent page's).
    /// </summary>
    static string SealedRequestOf(HttpContext http, OpenIddictRequest request) =>
        !string.IsNullOrEmpty(request.RequestUri) ? request.RequestUri
        : http.Items[RequestObjects.Item] is string requestObject ? Hosting.OneTimeTokens.Digest(requestObject)
        : Hosting.OneTimeTokens.Digest(string.Join('&', RequestParameters(http, Parameters.Prompt, Parameters.MaxAge, Parameters.AcrValues, LoginAskedField, ConsentField)
            .Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value ?? "")).Order(StringComparer.Ordinal)));

    /// <summary>
    /// Whether the user signed in after this request sent them to the login page: the note sealed then names it, and
    /// the session's auth_time is no earlier. Its prompt=login, max_age and step-up are met then (or, for a client's
    /// minimum_acr the account could not give, answered with an error instead of another login).
    /// </summary>
    static bool LoggedInForThisRequest(HttpContext http, AuthenticateResult session, OpenIddictRequest request)
    {
        var note = (http.Request.HasFormContentType ? http.Request.Form[LoginAskedField] : http.Request.Query[LoginAskedField]).ToString();
        if (note.Length == 0)
            return false;
        var sealedRequest = SealedRequestOf(http, request);
        string[] parts;
        try
        {
            parts = LoginAskedProtector(http).Unprotect(note).Split('\n');
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
        return parts is [var named, var asked] && named == sealedRequest && long.TryParse(asked, out var seconds) &&
            AuthenticatedAt(session) is { } authenticated && authenticated.ToUnixTimeSeconds() >= seconds;
    }

    /// <summary>
    /// The browser session's login is older than the client's max_age, or than a sign-in may last at all
    /// (<see cref="SessionMaxLifetime"/>): the user logs in again, rather than the app getting a sign-in already over.
    /// </summary>
    static bool IsTooOld(AuthenticateResult session, OpenIddictRequest request, TokenOptions tokens) =>
        AuthenticatedAt(session) is { } authenticated &&
        (DateTimeOffset.UtcNow - authenticated >= tokens.RefreshTokenAbsoluteLifetime ||
         request.MaxAge is long maxAge && DateTimeOffset.UtcNow - authenticated > TimeSpan.FromSeconds(maxAge));

    /// <summary>
    /// When the session's user last proved who they are: the auth_time the login page stamped on the cookie (kept
    /// through its renewals), else for an older cookie its issue time.
    /// </summary>
    internal static DateTimeOffset? AuthenticatedAt(AuthenticateResult session) =>
        PrincipalFactory.AuthenticatedAt(session.Principal) ?? session.Properties?.IssuedUtc;

    static IEnumerable<KeyValuePair<string, string?>> RequestParameters(HttpContext http, params string[] excluded) =>
        (http.Request.HasFormContentType ? (IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>>)http.Request.Form : http.Request.Query)
        .Where(p => !excluded.Contains(p.Key) && !p.Key.StartsWith("__", StringComparison.Ordinal))
        .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)));

    static object ClaimValue(Claim claim) => claim.ValueType switch
    {
        JsonClaimValueTypes.JsonArray or JsonClaimValueTypes.Json => JsonSerializer.Deserialize<JsonElement>(claim.Value),
        ClaimValueTypes.Boolean => bool.Parse(claim.Value),
        _ => claim.Value,
    };

    internal static IResult SignIn(ClaimsPrincipal principal) =>
        Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);

    internal static IResult Forbid(string error, string description, string? reason = null)
    {
        var properties = ErrorProperties(error, description);
        if (reason is not null)
            properties.Parameters[MfaGrant.Reason] = reason;
        return Results.Forbid(properties, [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
    }

    /// <summary>
    /// The password was right but the account has MFA: no tokens, a challenge to finish with the MFA grant. An account
    /// that must first set up an authenticator app also gets its <paramref name="setup"/> (shown once), as the auth API's
    /// login answers; the app's first code, redeemed with the MFA grant, turns it on.
    /// </summary>
    static IResult MfaRequired(string mfaToken, string[] methods, MultiFactor.Setup? setup = null)
    {
        var properties = ErrorProperties(MfaGrant.MfaRequired, setup is null
            ? "A second factor is required: redeem the mfa_token with the MFA grant."
            : "A second factor is required and must be set up first: add the enrollment's secret to an authenticator app, then redeem the mfa_token with its code.");
        properties.Parameters[MfaGrant.MfaToken] = mfaToken;
        properties.Parameters["methods"] = methods;
        properties.Parameters["expires_in"] = (long)MultiFactor.ChallengeLifetime.TotalSeconds;
        if (setup is not null)
        {
            properties.Parameters["enrollment_required"] = true;
            properties.Parameters["enrollment"] = JsonSerializer.SerializeToElement(
                new { secret = setup.Secret, setup_uri = setup.SetupUri, qr_code = setup.QrCode, backup_codes = setup.BackupCodes });
        }
        return Results.Forbid(properties, [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
    }

    static AuthenticationProperties ErrorProperties(string error, string description) => new(new Dictionary<string, string?>
    {
        [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
        [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
    });
}
