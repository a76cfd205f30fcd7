using System.Security.Claims;
using Identity.Server.Connect;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account.Pages;

public sealed class LoginModel(UserManager<User> users, SignInManager<User> signIn) : PageModel
{
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        var (user, lockedUntil) = await PasswordCheck.SignInAsync(users, signIn, Email, Password);
        if (user is null)
        {
            // One message for every failure: it must not tell whether the email has an account.
            Error = lockedUntil is null ? "Invalid email or password." : "This account is locked after too many failed attempts; try again later.";
            return Page();
        }

        await signIn.SignInWithClaimsAsync(user, isPersistent: false, [new Claim(Claims.AuthenticationMethodReference, AuthenticationMethods.Password)]);
        // Only local return URLs: an open redirect here would turn the login page into a phishing relay.
        return LocalRedirect(Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : "/");
    }
}
