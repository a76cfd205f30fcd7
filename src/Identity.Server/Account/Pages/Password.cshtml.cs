using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Users;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The signed-in user changes their password with the current one (Keycloak's account console, "Signing in"), under
/// the same rules as /api/v1/auth/password (<see cref="Accounts.ChangePasswordAsync"/>). A password is changed when
/// someone else may know it, so every session elsewhere ends (app sessions at once, other browsers within a minute);
/// this browser stays signed in, with its apps. An account without a password (signed in through a provider) sets
/// one through the reset email.
/// </summary>
[Authorize]
public sealed class PasswordModel(UserManager<User> users, SignInManager<User> signIn, FailedSignIns failures, SecurityEvents events,
    Sessions.SessionStore sessions) : PageModel
{
    [BindProperty] public string? CurrentPassword { get; set; }
    [BindProperty] public string? NewPassword { get; set; }
    [BindProperty] public string? ConfirmPassword { get; set; }

    public bool HasPassword { get; private set; }
    public string? Message { get; private set; }
    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        HasPassword = user.PasswordHash is not null;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        HasPassword = user.PasswordHash is not null;
        if (!HasPassword)
            return Page();
        if (string.IsNullOrEmpty(CurrentPassword) || string.IsNullOrEmpty(NewPassword))
            return Show("Enter your current password and a new one.");
        if (NewPassword != ConfirmPassword)
            return Show("The new password and its confirmation differ.");

        var change = await Accounts.ChangePasswordAsync(HttpContext, users, failures, events, user, CurrentPassword, NewPassword);
        switch (change.Outcome)
        {
            case Accounts.PasswordChangeOutcome.TooManyFailures:
                return Show($"Too many failed attempts: try again in {Math.Ceiling(change.RetryAfter!.Value.TotalMinutes)} minutes.");
            case Accounts.PasswordChangeOutcome.Locked:
                return Show("Your account is locked after too many failed attempts: try again later.");
            case Accounts.PasswordChangeOutcome.WrongPassword:
                return Show("Your current password is not right.");
            case Accounts.PasswordChangeOutcome.Refused:
                return Show(change.Refusal!.Errors.FirstOrDefault()?.Description ?? "That password cannot be used.");
        }
        var ended = await sessions.RevokeElsewhereAsync(user.Id, User.FindFirst(Connect.ClaimDestinations.SessionId)?.Value);
        await BrowserSession.RenewAsync(signIn, HttpContext, user);
        Message = ended switch
        {
            0 => "Your password is changed.",
            1 => "Your password is changed, and 1 other session was signed out.",
            _ => $"Your password is changed, and {ended} other sessions were signed out.",
        };
        return Page();
    }

    PageResult Show(string error)
    {
        Error = error;
        return Page();
    }
}
