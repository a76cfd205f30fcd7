using System.Security.Claims;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Mfa;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The login page of the authorization code flow: password, then the second factor when the account has one.
/// The second step carries the same single-use mfa_token as the API's, in the form, never in the address.
/// </summary>
public sealed class LoginModel(UserManager<User> users, SignInManager<User> signIn, MultiFactor mfa, SecurityEvents events, IdentityDbContext db) : PageModel
{
    const string Client = "login-page";

    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty] public string? Code { get; set; }
    [BindProperty] public string? MfaToken { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        var (user, lockedUntil) = await PasswordCheck.SignInAsync(users, signIn, events, db, Email, Password);
        if (user is null)
        {
            // One message for every failure: it must not tell whether the email has an account.
            Error = lockedUntil is null ? "Invalid email or password." : "This account is locked after too many failed attempts; try again later.";
            return Page();
        }
        if (await mfa.IsEnabledAsync(user.Id))
        {
            MfaToken = await mfa.ChallengeAsync(user, Client);
            return Page();
        }
        return await SignInAsync(user, [AuthenticationMethods.Password]);
    }

    public async Task<IActionResult> OnPostCodeAsync()
    {
        var method = Code?.Trim() is { Length: 6 } digits && digits.All(char.IsAsciiDigit) ? MultiFactor.Totp : MultiFactor.BackupCode;
        var (outcome, user) = await mfa.CompleteAsync(MfaToken, Client, method, Code?.Trim());
        if (user is not null)
            return await SignInAsync(user, [AuthenticationMethods.Password, AuthenticationMethods.OneTimePassword, AuthenticationMethods.MultiFactor]);

        Error = outcome switch
        {
            MultiFactor.Outcome.Rejected => "That code is not valid.",
            MultiFactor.Outcome.Locked => "Too many wrong codes: try again later.",
            _ => "This sign-in has expired; enter your password again.",
        };
        if (outcome is not MultiFactor.Outcome.Rejected)
            MfaToken = null;
        return Page();
    }

    async Task<IActionResult> SignInAsync(User user, string[] methods)
    {
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, methods.Select(m => new Claim(Claims.AuthenticationMethodReference, m)));
        await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user), new { method = string.Join(' ', methods), source = "login_page" });
        // Only local return URLs: an open redirect here would turn the login page into a phishing relay.
        return LocalRedirect(Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : "/");
    }
}
