using System.Net.Mail;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// Sign-up in the browser, as Keycloak's and Auth0's hosted pages offer, for apps that send their users to this
/// server rather than build a form of their own: the login page links here, and an authorization request with
/// prompt=create (OpenID Connect's Initiating User Registration) opens it. The same rules as
/// /api/v1/auth/register (Accounts): a valid address not registered yet, a password of the policy, a verification
/// email when a sender is configured. The new account is signed in and goes back where it came from, an app's
/// authorization request included, unless the server requires a verified address first (Identity:SignIn:RequireVerifiedEmail):
/// then it is told to follow its link. Closed with Identity:Registration:Enabled=false, like the API.
/// </summary>
public sealed class RegisterModel(UserManager<User> users, SignInManager<User> signIn, IdentityDbContext db, SecurityEvents events,
    TimeProvider time, Connect.TokenOptions tokens) : PageModel
{
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }
    /// <summary>Made, and waiting for its address to be verified before it may sign in.</summary>
    public bool AwaitingVerification { get; private set; }

    bool Open => Accounts.RegistrationOpen(HttpContext.RequestServices.GetRequiredService<IConfiguration>());

    public IActionResult OnGet() => Open ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync()
    {
        if (!Open)
            return NotFound();
        var email = Email?.Trim() ?? "";
        if (!MailAddress.TryCreate(email, out var address) || address.Address != email)
            return Refuse("Enter a valid email address.");
        if (FreeText.Problem(Name, "name", 256) is { } problem)
            return Refuse(problem);
        // Accounts makes one without a password when given none (SCIM, external providers): not from this form.
        if (string.IsNullOrEmpty(Password))
            return Refuse("Choose a password.");

        var user = new User { Email = email, Name = string.IsNullOrWhiteSpace(Name) ? null : Name.Trim(), LastLoginAt = time.GetUtcNow() };
        var created = await Accounts.CreateAsync(users, db, events, user, Password, []);
        // Where addresses must be verified first, a taken one reads as a new one and its owner is told (as the API does).
        if (Accounts.AwaitsVerification(signIn, user) && Accounts.IsTaken(created))
        {
            await AccountEmails.SendRegistrationAttemptAsync(HttpContext, users, email);
            AwaitingVerification = true;
            return Page();
        }
        if (!created.Succeeded)
            // As Keycloak's and Auth0's sign-up pages (and the seed's API) do, a taken address is said to be taken.
            return Refuse(Accounts.IsTaken(created)
                ? "An account with this email already exists. Sign in instead."
                : created.Errors.FirstOrDefault()?.Description ?? "The account could not be created.");
        await AccountEmails.SendVerificationIfConfiguredAsync(HttpContext, users, user);
        // The server wants the address proven first: no session until the link is followed.
        if (Accounts.AwaitsVerification(signIn, user))
        {
            AwaitingVerification = true;
            return Page();
        }
        await BrowserSession.SignInAsync(signIn, events, time, tokens, user, [Connect.AuthenticationMethods.Password], null, rememberMe: false, "registration_page");
        // Only local return URLs, as on the login page.
        return LocalRedirect(Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : "/");
    }

    IActionResult Refuse(string error)
    {
        Error = error;
        return Page();
    }
}
