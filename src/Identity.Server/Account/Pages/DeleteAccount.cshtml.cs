using Identity.Server.Data;
using Microsoft.AspNetCore.Authentication;
using Identity.Server.Users;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The user deletes their own account (Keycloak's "Delete Account", off unless Identity:Accounts:AllowSelfDeletion),
/// with its password, or with a recent sign-in when it has none (<see cref="Accounts.DeleteOwnAsync"/>). Every session
/// and token of it ends, the apps that asked hear so (back-channel logout), and this browser is signed out.
/// </summary>
[Authorize]
public sealed class DeleteAccountModel(UserManager<User> users, IConfiguration configuration) : PageModel
{
    [BindProperty] public string? Password { get; set; }

    public bool HasPassword { get; private set; }
    public bool Deleted { get; private set; }
    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!Accounts.SelfDeletionAllowed(configuration))
            return NotFound();
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        HasPassword = await users.HasPasswordAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!Accounts.SelfDeletionAllowed(configuration))
            return NotFound();
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        HasPassword = await users.HasPasswordAsync(user);
        var (outcome, retryAfter) = await Accounts.DeleteOwnAsync(HttpContext, User, user, Password);
        switch (outcome)
        {
            case Accounts.SelfDeletionOutcome.Deleted:
                await HttpContext.SignOutAsync(IdentityConstants.ApplicationScheme);
                Deleted = true;
                break;
            case Accounts.SelfDeletionOutcome.TooManyFailures:
                Error = $"Too many failed attempts: try again in {Math.Ceiling(retryAfter!.Value.TotalMinutes)} minutes.";
                break;
            case Accounts.SelfDeletionOutcome.Locked:
                Error = "Your account is locked after too many failed attempts: try again later.";
                break;
            case Accounts.SelfDeletionOutcome.WrongPassword:
                Error = "That password is not right.";
                break;
            case Accounts.SelfDeletionOutcome.NeedsRecentSignIn:
                Error = "Sign out and in again, then delete your account within 15 minutes.";
                break;
            default:
                Error = "You are the server's last administrator: make someone else an administrator first.";
                break;
        }
        return Page();
    }
}
