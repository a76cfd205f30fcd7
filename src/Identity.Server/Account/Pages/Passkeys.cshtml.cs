using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The signed-in user's passkeys (WebAuthn, through ASP.NET Core Identity): list, add, remove. Adding one needs a
/// recent sign-in (<see cref="RecentSignIn"/>). Each change is audited (passkey.added, passkey.removed).
/// </summary>
[Authorize]
public sealed class PasskeysModel(UserManager<User> users, SignInManager<User> signIn, SecurityEvents events, TimeProvider time) : PageModel
{
    const int MaxPasskeys = 20;

    /// <summary>The browser's answer to navigator.credentials.create, as JSON.</summary>
    [BindProperty] public string? Credential { get; set; }

    /// <summary>What the user calls the new passkey ("Work laptop").</summary>
    [BindProperty] public string? Name { get; set; }

    /// <summary>The credential id of the passkey to remove, base64url.</summary>
    [BindProperty] public string? Id { get; set; }

    public IReadOnlyList<UserPasskeyInfo> Passkeys { get; private set; } = [];
    public string? Message { get; private set; }
    public string? Error { get; private set; }

    public bool SignedInRecently => RecentSignIn.Holds(User, time);

    public async Task<IActionResult> OnGetAsync() => await ShowAsync();

    /// <summary>The options for navigator.credentials.create: this user, and the passkeys they have (not to be made twice).</summary>
    public async Task<IActionResult> OnPostCreationOptionsAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null || !SignedInRecently)
            return StatusCode(StatusCodes.Status403Forbidden);
        return Content(await signIn.MakePasskeyCreationOptionsAsync(new PasskeyUserEntity
        {
            Id = user.Id, Name = user.Email ?? user.UserName!, DisplayName = user.Name ?? user.Email ?? user.UserName!,
        }), "application/json");
    }

    public async Task<IActionResult> OnPostAddAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
            return Challenge();
        if (!SignedInRecently)
            return await ShowAsync(error: "Sign in again to add a passkey.");
        if ((await users.GetPasskeysAsync(user)).Count >= MaxPasskeys)
            return await ShowAsync(error: $"An account has at most {MaxPasskeys} passkeys: remove one first.");
        if (Hosting.FreeText.Problem(Name, "name", 100) is { } nameProblem)
            return await ShowAsync(error: nameProblem);

        PasskeyAttestationResult result;
        try
        {
            result = await signIn.PerformPasskeyAttestationAsync(Credential ?? "");
        }
        catch (Exception e) when (PasskeyView.IsUnreadableAnswer(e))
        {
            result = PasskeyAttestationResult.Fail(new PasskeyException("The browser's answer could not be read."));
        }
        // The options named this user; an answer made for another account (another tab) is not added here.
        if (!result.Succeeded || result.UserEntity.Id != user.Id)
            return await ShowAsync(error: "The passkey could not be added. Try again.");

        var passkey = result.Passkey;
        passkey.Name = string.IsNullOrWhiteSpace(Name) ? "Passkey" : Name.Trim();
        // Raised first: the store saves the event with the passkey.
        await events.RaiseAsync(EventTypes.PasskeyAdded, SecurityEvents.Subject.Of(user), new { passkey = passkey.Name, id = PasskeyView.IdOf(passkey) });
        var saved = await users.AddOrUpdatePasskeyAsync(user, passkey);
        if (!saved.Succeeded)
            return await ShowAsync(error: "The passkey could not be added. Try again.");
        return await ShowAsync(message: $"Added \"{passkey.Name}\". You can sign in with it from now on.");
    }

    public async Task<IActionResult> OnPostRemoveAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
            return Challenge();
        var passkey = (await users.GetPasskeysAsync(user)).FirstOrDefault(p => PasskeyView.IdOf(p) == Id);
        if (passkey is null)
            return await ShowAsync(error: "There is no such passkey.");
        await events.RaiseAsync(EventTypes.PasskeyRemoved, SecurityEvents.Subject.Of(user), new { passkey = passkey.Name, id = PasskeyView.IdOf(passkey) });
        await users.RemovePasskeyAsync(user, passkey.CredentialId);
        return await ShowAsync(message: $"Removed \"{passkey.Name}\".");
    }

    async Task<IActionResult> ShowAsync(string? message = null, string? error = null)
    {
        (Message, Error) = (message, error);
        if (await users.GetUserAsync(User) is { } user)
            Passkeys = [.. await users.GetPasskeysAsync(user)];
        return Page();
    }
}
