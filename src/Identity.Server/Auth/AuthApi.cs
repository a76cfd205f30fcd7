using System.Net.Mail;
using System.Security.Claims;
using System.Text.Json.Serialization;
using Identity.Server.Account;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Mfa;
using Identity.Server.Users;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Auth;

public static class AuthApi
{
    public sealed record LoginRequest(string Email, string Password, bool? RememberMe);
    public sealed record RegisterRequest(string Email, string Password, string? Name);
    public sealed record RefreshRequest(string RefreshToken);
    public sealed record MeResponse(UserView User);

    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        // login, register and refresh are OpenIddict token endpoints (see AuthFacade): OpenIddict has read and
        // validated the request before these run, and writes their answer. The Accepts/Produces only document them.
        var tokens = app.MapGroup(AuthFacade.Prefix).WithTags("Auth");
        tokens.MapPost("/login", Login).Accepts<LoginRequest>("application/json").Produces<FacadeTokenResponse>().Produces<MfaRequiredResponse>()
            .WithSummary("Sign in with email and password");
        tokens.MapPost("/register", Register).Accepts<RegisterRequest>("application/json").Produces<FacadeTokenResponse>()
            .WithSummary("Create an account and sign in");
        tokens.MapPost("/refresh", ConnectEndpoints.Exchange).Accepts<RefreshRequest>("application/json").Produces<FacadeTokenResponse>()
            .WithSummary("Exchange a refresh token for new tokens (the old refresh token is spent)");

        var account = app.MapGroup(AuthFacade.Prefix).WithTags("Auth").RequireAuthorization(ServerApi.Policy);
        account.MapGet("/me", Me).WithSummary("The calling user");
        account.MapPost("/password", ChangePassword).Produces(StatusCodes.Status204NoContent)
            .WithSummary("Change the caller's password with the current one; every other session ends");
        account.MapDelete("/me", DeleteMe).Produces(StatusCodes.Status204NoContent)
            .WithSummary("Delete the caller's account, with its password (when Identity:Accounts:AllowSelfDeletion is on)");
        return app;
    }

    public sealed record DeleteAccountRequest(string? Password);

    static async Task<IResult> DeleteMe(HttpContext http, ClaimsPrincipal principal, UserManager<User> users, IConfiguration configuration,
        [Microsoft.AspNetCore.Mvc.FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] DeleteAccountRequest? body)
    {
        if (!Accounts.SelfDeletionAllowed(configuration))
            return ApiErrors.Result(http, 403, "FORBIDDEN", "Accounts are deleted by an administrator on this server.", new { reason = "self_deletion_disabled" });
        if (await users.GetUserAsync(principal) is not { } user)
            return ApiErrors.Result(http, StatusCodes.Status404NotFound, "NOT_FOUND", "The token does not belong to a user.");
        var (outcome, retryAfter) = await Accounts.DeleteOwnAsync(http, principal, user, body?.Password);
        return outcome switch
        {
            Accounts.SelfDeletionOutcome.Deleted => Results.NoContent(),
            Accounts.SelfDeletionOutcome.TooManyFailures => TooManyFailures(http, retryAfter!.Value),
            Accounts.SelfDeletionOutcome.Locked => ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN",
                "The account is locked after too many failed attempts.", new { reason = "account_locked" }),
            Accounts.SelfDeletionOutcome.WrongPassword => ApiErrors.Result(http, StatusCodes.Status401Unauthorized, "INVALID_CREDENTIALS",
                "The password is not right.", new { field = "password" }),
            Accounts.SelfDeletionOutcome.NeedsRecentSignIn => ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN",
                "Sign in again (within the last 15 minutes) to delete the account.", new { reason = "recent_sign_in_required" }),
            _ => ApiErrors.Result(http, StatusCodes.Status409Conflict, "CONFLICT",
                "This is the server's last administrator: make another administrator first.", new { reason = "last_admin" }),
        };
    }

    public sealed record ChangePasswordRequest(string? CurrentPassword, string? NewPassword);

    /// <summary>
    /// A registration when the server requires a verified address before any sign-in: no tokens, and the same answer
    /// whether the address was free (its link is sent) or taken (its owner is told).
    /// </summary>
    public sealed record AwaitingVerification(bool VerificationRequired, string Message)
    {
        public static readonly IResult Answer = Results.Json(new AwaitingVerification(true,
            "If the address can be registered, a link to finish is on its way: follow it, then sign in."), statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>
    /// A login held for its second factor; when the account must first set one up, also that setup (the authenticator
    /// app's secret, shown once) and enrollment_required: the app's first code, sent with the mfa_token to
    /// /api/v1/auth/mfa/verify, turns it on and finishes the login.
    /// </summary>
    public sealed record MfaRequiredResponse(bool MfaRequired, string MfaToken, IReadOnlyList<string> Methods, long ExpiresIn,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? EnrollmentRequired = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] MfaApi.SetupResponse? Enrollment = null)
    {
        /// <summary>The answer that holds this login for its second factor or its setup; null when it needs neither.</summary>
        public static async Task<IResult?> ForAsync(MultiFactor mfa, User user, string? clientId, bool appRequiresIt = false, string? identityProvider = null,
            bool rememberMe = false)
        {
            var expiresIn = (long)MultiFactor.ChallengeLifetime.TotalSeconds;
            switch (await mfa.NextStepAsync(user, appRequiresIt))
            {
                case MultiFactor.Step.Code:
                    return Results.Ok(new MfaRequiredResponse(true, await mfa.ChallengeAsync(user, clientId, identityProvider: identityProvider, rememberMe: rememberMe),
                        await mfa.LoginMethodsAsync(user.Id), expiresIn));
                case MultiFactor.Step.Enrollment:
                    var (token, setup) = await mfa.EnrollAsync(user, clientId, identityProvider, rememberMe);
                    return Results.Ok(new MfaRequiredResponse(true, token, [MultiFactor.Totp], expiresIn, true,
                        new MfaApi.SetupResponse(setup.Secret, setup.SetupUri, setup.QrCode, setup.BackupCodes)));
                default:
                    return null;
            }
        }
    }

    static async Task<IResult> Login(HttpContext http, UserManager<User> users, SignInManager<User> signIn, PrincipalFactory factory, MultiFactor mfa,
        SecurityEvents events, IdentityDbContext db, FailedSignIns failures, Connect.TokenOptions tokens)
    {
        var request = http.GetOpenIddictServerRequest()!;
        var rememberMe = (bool?)request[AuthFacade.RememberMe] == true;
        var (user, lockedUntil, retryAfter, awaitsVerification, mustChangePassword) = await PasswordCheck.SignInAsync(users, signIn, events, db, failures, request.Username, request.Password);
        if (retryAfter is { } wait)
            return TooManyFailures(http, wait);
        if (user is not null && await MfaRequiredResponse.ForAsync(mfa, user, request.ClientId, rememberMe: rememberMe) is { } held)
            return held;
        if (user is not null)
        {
            await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user), new { amr = new[] { AuthenticationMethods.Password }, client = request.ClientId });
            return SignIn(AuthFacade.Remembering(request, await factory.ForUserAsync(user, request.GetScopes(), [AuthenticationMethods.Password]), rememberMe, tokens));
        }
        if (awaitsVerification)
            return ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN", "The email address is not verified yet: follow the link sent to it.",
                new { reason = "email_not_verified" });
        if (mustChangePassword is not null)
            return ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN", "The password is temporary: sign in on the login page to choose a new one.",
                new { reason = "password_change_required" });
        if (Accounts.IsDeactivation(lockedUntil))
            return ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN", "The account is disabled.", new { reason = "account_disabled" });
        if (lockedUntil is not null)
            return ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN", "The account is locked after too many failed attempts.",
                new { reason = "account_locked", locked_until = lockedUntil });
        return ApiErrors.Result(http, StatusCodes.Status401Unauthorized, "INVALID_CREDENTIALS", "The provided credentials are invalid.");
    }

    static async Task<IResult> Register(HttpContext http, UserManager<User> users, SignInManager<User> signIn, IdentityDbContext db, PrincipalFactory factory,
        SecurityEvents events, IConfiguration configuration)
    {
        if (!Accounts.RegistrationOpen(configuration))
            return ApiErrors.Result(http, 403, "FORBIDDEN", "Registration is closed on this server: ask an administrator for an account.",
                new { reason = "registration_disabled" });
        var request = http.GetOpenIddictServerRequest()!;
        var email = request.Username!.Trim();
        var name = (string?)request["name"];
        if (!MailAddress.TryCreate(email, out var address) || address.Address != email)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "The email address is not valid.", new { field = "email" });
        if (FreeText.Problem(name, "name", 256) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem, new { field = "name" });

        var user = new User { Email = email, Name = string.IsNullOrWhiteSpace(name) ? null : name.Trim(), LastLoginAt = DateTimeOffset.UtcNow };
        var created = await Accounts.CreateAsync(users, db, events, user, request.Password, []);
        // Where addresses must be verified first, a taken one answers as a new one, and its owner is told instead: the
        // answer says nothing about which addresses have accounts.
        if (Accounts.AwaitsVerification(signIn, user) && Accounts.IsTaken(created))
        {
            await AccountEmails.SendRegistrationAttemptAsync(http, users, email);
            return AwaitingVerification.Answer;
        }
        if (!created.Succeeded)
            return Accounts.Problem(http, created);
        // The address is unproven until its owner follows the link: no organization membership before that.
        await AccountEmails.SendVerificationIfConfiguredAsync(http, users, user);
        if (Accounts.AwaitsVerification(signIn, user))
            return AwaitingVerification.Answer;
        await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user), new { amr = new[] { AuthenticationMethods.Password }, source = "registration" });
        return SignIn(await factory.ForUserAsync(user, request.GetScopes(), [AuthenticationMethods.Password]));
    }

    static IResult TooManyFailures(HttpContext http, TimeSpan wait)
    {
        var seconds = RateLimits.SetRetryAfter(http, wait);
        return ApiErrors.Result(http, StatusCodes.Status429TooManyRequests, "RATE_LIMITED", "Too many failed sign-ins from this network.",
            new { reason = "too_many_failed_sign_ins", retry_after = seconds });
    }

    /// <summary>
    /// The current password proves it is the user and not just someone holding their token; a wrong one counts like a
    /// failed sign-in (account lockout and the network's failures). Other sessions end: a password is changed when
    /// someone else may know it.
    /// </summary>
    static async Task<IResult> ChangePassword(HttpContext http, ClaimsPrincipal principal, ChangePasswordRequest body, UserManager<User> users,
        FailedSignIns failures, SecurityEvents events, Sessions.SessionStore sessions)
    {
        if (string.IsNullOrEmpty(body.CurrentPassword))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "The current password is required.", new { field = "current_password" });
        if (string.IsNullOrEmpty(body.NewPassword))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "A new password is required.", new { field = "new_password" });
        var user = await users.GetUserAsync(principal);
        if (user is null)
            return ApiErrors.Result(http, StatusCodes.Status404NotFound, "NOT_FOUND", "The token does not belong to a user.");
        var change = await Accounts.ChangePasswordAsync(http, users, failures, events, user, body.CurrentPassword, body.NewPassword);
        switch (change.Outcome)
        {
            case Accounts.PasswordChangeOutcome.TooManyFailures:
                return TooManyFailures(http, change.RetryAfter!.Value);
            case Accounts.PasswordChangeOutcome.Locked:
                return ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN", "The account is locked after too many failed attempts.",
                    new { reason = "account_locked", locked_until = change.LockedUntil });
            case Accounts.PasswordChangeOutcome.WrongPassword:
                return ApiErrors.Result(http, StatusCodes.Status401Unauthorized, "INVALID_CREDENTIALS", "The current password is not right.",
                    new { field = "current_password" });
            case Accounts.PasswordChangeOutcome.Refused:
                return Accounts.Problem(http, change.Refusal!, passwordField: "new_password");
        }
        await sessions.RevokeAllAsync(user.Id, except: principal.GetAuthorizationId());
        return Results.NoContent();
    }

    static async Task<IResult> Me(ClaimsPrincipal principal, UserManager<User> users, IdentityDbContext db, UserAttributes attributes, HttpContext http)
    {
        var user = await users.GetUserAsync(principal);
        if (user is null)
            return ApiErrors.Result(http, StatusCodes.Status404NotFound, "NOT_FOUND", "The token does not belong to a user.");
        return Results.Ok(new MeResponse(await UserView.OfAsync(db, attributes, user)));
    }

    static IResult SignIn(ClaimsPrincipal principal) =>
        Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
}
