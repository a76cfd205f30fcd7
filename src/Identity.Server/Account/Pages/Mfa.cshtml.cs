using Identity.Server.Data;
using Identity.Server.Mfa;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// Two-step verification for the signed-in user, in the browser (Keycloak's "Configure OTP", the account console's
/// signing-in page): set up an authenticator app (QR code, its secret, backup codes shown once), confirm it with a
/// code, and turn it off with a code. The same steps as /api/v1/auth/mfa, through <see cref="MultiFactor"/>, so users
/// of apps that only send them to the login page can protect their account too. Setting up needs a recent sign-in
/// (<see cref="RecentSignIn"/>); turning it off needs a current or backup code. Changes are audited by MultiFactor.
/// </summary>
[Authorize]
public sealed class MfaModel(UserManager<User> users, MultiFactor mfa, TimeProvider time) : PageModel
{
    /// <summary>A code from the authenticator app, or a backup code to turn verification off.</summary>
    [BindProperty] public string? Code { get; set; }

    public bool Enabled { get; private set; }
    public int RemainingBackupCodes { get; private set; }
    /// <summary>A setup just begun: shown once, then only its confirmation form.</summary>
    public MultiFactor.Setup? Setup { get; private set; }
    /// <summary>A setup waits for its first code.</summary>
    public bool AwaitingCode { get; private set; }
    public string? Message { get; private set; }
    public string? Error { get; private set; }

    public bool SignedInRecently => RecentSignIn.Holds(User, time);

    public async Task<IActionResult> OnGetAsync() => await ShowAsync();

    public async Task<IActionResult> OnPostBeginAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        if (!SignedInRecently)
            return await ShowAsync(error: "Sign in again to set up two-step verification.");
        Setup = await mfa.BeginAsync(user);
        if (Setup is null)
            return await ShowAsync(error: "Two-step verification is already on.");
        AwaitingCode = true;
        return await ShowAsync();
    }

    public async Task<IActionResult> OnPostConfirmAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        if (!SignedInRecently)
            return await ShowAsync(error: "Sign in again to set up two-step verification.");
        var (outcome, _) = await mfa.ConfirmAsync(user, Code?.Trim());
        if (outcome == MultiFactor.Outcome.Accepted)
            return await ShowAsync(message: "Two-step verification is on: from now on, signing in asks for a code from your app.");
        AwaitingCode = outcome == MultiFactor.Outcome.Rejected;
        return await ShowAsync(error: Problem(outcome));
    }

    public async Task<IActionResult> OnPostDisableAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        var outcome = await mfa.DisableAsync(user, Code?.Trim());
        return outcome == MultiFactor.Outcome.Accepted
            ? await ShowAsync(message: "Two-step verification is off.")
            : await ShowAsync(error: Problem(outcome));
    }

    static string Problem(MultiFactor.Outcome outcome) => outcome switch
    {
        MultiFactor.Outcome.Locked => "Too many wrong codes: try again in a few minutes.",
        MultiFactor.Outcome.NotSetUp => "There is nothing to confirm: start the setup again.",
        MultiFactor.Outcome.RequiredByPolicy => "Your account must have two-step verification, so it cannot be turned off. An administrator can reset it if you lose your phone.",
        _ => "That code is not right. Enter the one your app shows now.",
    };

    async Task<IActionResult> ShowAsync(string? message = null, string? error = null)
    {
        (Message, Error) = (message, error);
        if (await users.GetUserAsync(User) is { } user)
        {
            Enabled = await mfa.IsEnabledAsync(user.Id);
            RemainingBackupCodes = Enabled ? await mfa.RemainingBackupCodesAsync(user.Id) : 0;
        }
        return Page();
    }
}
