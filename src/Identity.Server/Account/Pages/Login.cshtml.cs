using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Federation;
using Identity.Server.Mfa;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The login page of the authorization code flow: a password or an external provider, then the second factor when
/// the account has one. The second step carries the same single-use mfa_token as the API's, in the form, never in
/// the address. An external sign-in whose email matches an account the provider does not vouch for asks for that
/// account's password before linking the two.
/// </summary>
public sealed class LoginModel(UserManager<User> users, SignInManager<User> signIn, MultiFactor mfa, SecurityEvents events, IdentityDbContext db,
    ExternalProviders providers, ExternalAccounts accounts, FailedSignIns failures, TimeProvider time, Connect.TokenOptions tokens,
    Microsoft.AspNetCore.DataProtection.IDataProtectionProvider protection, Sessions.SessionStore sessions,
    OpenIddict.Abstractions.IOpenIddictApplicationManager applications) : PageModel
{
    const string Client = "login-page";
    const string ExternalIncomplete = "The sign-in with the external provider did not complete. Try again.";

    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty] public string? Code { get; set; }
    [BindProperty] public string? MfaToken { get; set; }

    /// <summary>The login waits for an authenticator app to be set up (<see cref="MultiFactor.EnrollAsync"/>); its code finishes it.</summary>
    [BindProperty] public bool Enrolling { get; set; }

    /// <summary>The app to set up, shown once: its QR code, key and backup codes.</summary>
    public MultiFactor.Setup? Enrollment { get; private set; }

    /// <summary>Set while a temporary password waits to be replaced (<see cref="TemporaryPassword"/>): the form asks for the new one.</summary>
    [BindProperty] public string? PasswordChangePass { get; set; }
    [BindProperty] public string? NewPassword { get; set; }
    [BindProperty] public string? ConfirmPassword { get; set; }

    /// <summary>The browser's answer to a passkey request (navigator.credentials.get), as JSON.</summary>
    [BindProperty] public string? Credential { get; set; }

    /// <summary>
    /// "Keep me signed in": the session outlives the browser, for as long as a remembered API login's refresh tokens
    /// (sliding); unchecked, as by default, it ends with the browser or after 8 idle hours.
    /// </summary>
    [BindProperty] public bool RememberMe { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }

    /// <summary>Set while an external sign-in waits for the password of the account it is to be linked to.</summary>
    public ExternalProvider? Linking { get; private set; }
    public IReadOnlyList<ExternalProvider> Providers => providers.All;

    /// <summary>A reset link can be emailed (an email sender is configured).</summary>
    public bool CanResetPassword => HttpContext.RequestServices.GetService<IEmailSender>() is not null;

    /// <summary>Anyone may sign up here (<see cref="Users.Accounts.RegistrationOpen"/>).</summary>
    public bool CanRegister => Users.Accounts.RegistrationOpen(HttpContext.RequestServices.GetRequiredService<IConfiguration>());

    /// <summary>Said only to the right password: the server requires a verified address, and a new link is on its way.</summary>
    const string AwaitsVerification = "Verify your email address first: we sent you a link. Follow it, then sign in.";

    static string TooManyFailures(TimeSpan wait) =>
        $"Too many failed sign-ins from your network. Try again in {Math.Max(1, (int)Math.Ceiling(wait.TotalMinutes))} minutes.";

    public void OnGet([FromQuery] string? error, [FromQuery(Name = "login_hint")] string? loginHint)
    {
        if (error == "external")
            Error = ExternalIncomplete;
        // The app's guess at who signs in (OIDC Core's login_hint): only filled in, never trusted.
        Email = loginHint;
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var (user, lockedUntil, retryAfter, awaitsVerification, mustChangePassword) = await PasswordCheck.SignInAsync(users, signIn, events, db, failures, Email, Password);
        if (mustChangePassword is not null)
        {
            PasswordChangePass = TemporaryPassword.Pass(protection, mustChangePassword);
            return Page();
        }
        if (user is null)
        {
            // One message for every failure: it must not tell whether the email has an account.
            Error = retryAfter is { } wait ? TooManyFailures(wait)
                : awaitsVerification ? AwaitsVerification
                : lockedUntil is null ? "Invalid email or password." : Locked(lockedUntil);
            return Page();
        }
        return await FinishAsync(user, identityProvider: null);
    }

    /// <summary>Back from a provider: sign in the account it names, create it, or ask to link it.</summary>
    public async Task<IActionResult> OnGetExternalAsync()
    {
        var external = await FederationApi.ReadExternalCookieAsync(HttpContext);
        if (external is null)
        {
            Error = ExternalIncomplete;
            return Page();
        }

        var resolution = await accounts.ResolveAsync(external);
        switch (resolution.Outcome)
        {
            case ExternalAccounts.Outcome.LinkRequired:
                (Linking, Email) = (providers.Find(external.Provider), external.Email);
                return Page();
            case ExternalAccounts.Outcome.NoEmail:
                Error = $"{providers.Find(external.Provider)?.DisplayName} did not share an email address with us, so no account can be made.";
                break;
            case ExternalAccounts.Outcome.Refused:
                Error = resolution.User is { } refused && Users.Accounts.AwaitsVerification(signIn, refused)
                    ? AwaitsVerification : "This account cannot sign in at the moment.";
                break;
        }
        await HttpContext.SignOutAsync(IdentityConstants.ExternalScheme);
        return resolution.User is { } user && Error is null ? await FinishAsync(user, external.Provider) : Page();
    }

    /// <summary>The account's password proves it is the user's: the provider is linked to it and the sign-in goes on.</summary>
    public async Task<IActionResult> OnPostLinkAsync()
    {
        var external = await FederationApi.ReadExternalCookieAsync(HttpContext);
        if (external?.Email is null)
        {
            Error = "The sign-in with the external provider has expired. Try again.";
            return Page();
        }
        // The account is the one the provider's email names, whatever the form says.
        var (user, lockedUntil, retryAfter, awaitsVerification, mustChangePassword) = await PasswordCheck.SignInAsync(users, signIn, events, db, failures, external.Email, Password);
        if (user is null)
        {
            (Linking, Email) = (providers.Find(external.Provider), external.Email);
            Error = retryAfter is { } wait ? TooManyFailures(wait)
                : awaitsVerification ? AwaitsVerification
                : mustChangePassword is not null ? "Your password is temporary: sign in with it here first, without the provider, to choose your own."
                : lockedUntil is null ? "That password is not right." : Locked(lockedUntil);
            return Page();
        }
        await accounts.LinkAsync(user, external);
        await HttpContext.SignOutAsync(IdentityConstants.ExternalScheme);
        return await FinishAsync(user, external.Provider);
    }

    /// <summary>
    /// The challenge for a passkey sign-in, for the page's script to hand to the browser. Any passkey of this site may
    /// answer it (the browser offers the user's own), so the page asks for no email first and tells nobody which
    /// accounts exist. Identity keeps the challenge in a short-lived cookie of its own.
    /// </summary>
    public async Task<IActionResult> OnPostPasskeyOptionsAsync() => Content(await signIn.MakePasskeyRequestOptionsAsync(null), "application/json");

    /// <summary>
    /// A passkey sign-in: ASP.NET Core Identity checks the signature against the stored public key, the challenge,
    /// the origin and the user verification this server requires (Account/AccountSetup), so the passkey stands for
    /// both factors and no code is asked for.
    /// </summary>
    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        PasskeyAssertionResult<User> result;
        try
        {
            result = await signIn.PerformPasskeyAssertionAsync(Credential ?? "");
        }
        catch (Exception e) when (PasskeyView.IsUnreadableAnswer(e))
        {
            result = PasskeyAssertionResult.Fail<User>(new PasskeyException("The browser's answer could not be read."));
        }
        if (!result.Succeeded || !await Users.Accounts.MaySignInAsync(signIn, result.User))
        {
            await events.RaiseNowAsync(EventTypes.AuthFailed, result.User is { } known ? SecurityEvents.Subject.Of(known) : null,
                new { reason = result.Succeeded ? "not_allowed" : "passkey_rejected", method = "passkey", source = "login_page" }, success: false);
            Error = "That passkey could not sign you in.";
            return Page();
        }
        // The passkey's signature counter and flags as this sign-in left them.
        await users.AddOrUpdatePasskeyAsync(result.User, result.Passkey);
        await Users.Accounts.RecordLoginAsync(db, result.User);
        return await SignInAsync(result.User, AuthenticationMethods.Passkey, identityProvider: null);
    }

    public async Task<IActionResult> OnPostCodeAsync()
    {
        var method = Enrolling || Code?.Trim() is { Length: 6 } digits && digits.All(char.IsAsciiDigit) ? MultiFactor.Totp : MultiFactor.BackupCode;
        var (outcome, user, identityProvider, _) = await mfa.CompleteAsync(MfaToken, Client, method, Code?.Trim());
        if (user is not null)
            return await SignInAsync(user, AuthenticationMethods.WithSecondFactor(identityProvider), identityProvider);

        Error = outcome switch
        {
            MultiFactor.Outcome.Rejected => "That code is not valid.",
            MultiFactor.Outcome.Locked => "Too many wrong codes: try again later.",
            _ => "This sign-in has expired; sign in again.",
        };
        if (outcome is not MultiFactor.Outcome.Rejected)
            MfaToken = null;
        return Page();
    }

    /// <summary>The new password in place of a temporary one; then the sign-in goes on as after any password.</summary>
    public async Task<IActionResult> OnPostChangePasswordAsync()
    {
        if (await TemporaryPassword.RedeemAsync(protection, users, PasswordChangePass) is not { } user)
        {
            PasswordChangePass = null;
            Error = "That took too long, or the password was changed already. Sign in again.";
            return Page();
        }
        if (string.IsNullOrEmpty(NewPassword) || NewPassword != ConfirmPassword)
            return ChangeRefused("Enter the new password twice, the same both times.");
        if (await users.CheckPasswordAsync(user, NewPassword))
            return ChangeRefused("Choose a password of your own, not the temporary one.");
        var replaced = await TemporaryPassword.ReplaceAsync(users, events, sessions, user, NewPassword);
        if (!replaced.Succeeded)
            return ChangeRefused(replaced.Errors.FirstOrDefault()?.Description ?? "That password cannot be used.");
        await Users.Accounts.RecordLoginAsync(db, user);
        return await FinishAsync(user, identityProvider: null);
    }

    IActionResult ChangeRefused(string error)
    {
        Error = error;
        return Page();
    }

    /// <summary>
    /// The first factor is done: the second one when the account has it, its setup when the account must have one,
    /// else the session.
    /// </summary>
    async Task<IActionResult> FinishAsync(User user, string? identityProvider)
    {
        switch (await mfa.NextStepAsync(user, await AppRequiresSecondFactorAsync()))
        {
            case MultiFactor.Step.Code:
                MfaToken = await mfa.ChallengeAsync(user, Client, identityProvider: identityProvider);
                return Page();
            case MultiFactor.Step.Enrollment:
                (MfaToken, Enrollment) = await mfa.EnrollAsync(user, Client, identityProvider);
                Enrolling = true;
                return Page();
        }
        return await SignInAsync(user, [AuthenticationMethods.First(identityProvider)], identityProvider);
    }

    /// <summary>
    /// The login is on its way to an app whose minimum_acr is multi-factor (its client_id is in the authorization
    /// request, as RFC 9126 and 9101 require even of pushed requests and request objects). The return address is the
    /// browser's to change, but changing it can only ask for more of its own sign-in, never less: the authorization
    /// endpoint checks the minimum again.
    /// </summary>
    async Task<bool> AppRequiresSecondFactorAsync()
    {
        if (!Url.IsLocalUrl(ReturnUrl) || !Uri.TryCreate(new Uri("http://local"), ReturnUrl, out var back) || back.AbsolutePath != "/connect/authorize")
            return false;
        var clientId = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(back.Query).TryGetValue("client_id", out var values) ? values.ToString() : null;
        return await AuthenticationContext.RequiresSecondFactorAsync(applications, clientId);
    }

    async Task<IActionResult> SignInAsync(User user, string[] methods, string? identityProvider)
    {
        await BrowserSession.SignInAsync(signIn, events, time, tokens, user, methods, identityProvider, RememberMe, "login_page");
        // Only local return URLs: an open redirect here would turn the login page into a phishing relay.
        return LocalRedirect(Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : "/");
    }

    static string Locked(DateTimeOffset? until) => Users.Accounts.IsDeactivation(until)
        ? "This account is disabled."
        : "This account is locked after too many failed attempts; try again later.";
}
