using Identity.Server.Data;
using Identity.Server.Federation;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The providers the signed-in user signs in with (Keycloak's account console, "Linked accounts"): link another while
/// signed in, by signing in with it, or unlink one unless it is the account's only way in. Linking adds a way into the
/// account, so, as for passkeys, it needs a sign-in of the last 15 minutes (<see cref="RecentSignIn"/>); it starts
/// with a form post (antiforgery), never a link another site could send. A provider account linked to another
/// account here is refused, not moved.
/// </summary>
[Authorize]
public sealed class LoginsModel(UserManager<User> users, ExternalProviders providers, ExternalAccounts accounts, TimeProvider time,
    ILoggerFactory logs) : PageModel
{
    const string Linked = "/Account/Logins?handler=Linked";

    public sealed record Row(ExternalProvider Provider, bool IsLinked);

    public IReadOnlyList<Row> Rows { get; private set; } = [];
    public string? Message { get; private set; }
    public string? Error { get; private set; }
    public bool SignedInRecently => RecentSignIn.Holds(User, time);

    public async Task<IActionResult> OnGetAsync(string? error) =>
        await ShowAsync(error: error == "external" ? "The sign-in with the provider did not complete. Try again." : null);

    public async Task<IActionResult> OnPostLinkAsync(string? provider)
    {
        if (providers.Find(provider ?? "") is not { } found)
            return await ShowAsync(error: "There is no such provider.");
        if (!SignedInRecently)
            return await ShowAsync(error: "Sign in again to link another way of signing in.");
        // The challenge (or its fallback redirect) is the whole answer.
        await FederationApi.ChallengeAsync(HttpContext, found, Linked, "/Account/Logins?error=external", logs);
        return new EmptyResult();
    }

    /// <summary>Back from the provider: its account joins this one, if it is nobody else's.</summary>
    public async Task<IActionResult> OnGetLinkedAsync()
    {
        var external = await FederationApi.ReadExternalCookieAsync(HttpContext);
        await HttpContext.SignOutAsync(IdentityConstants.ExternalScheme);
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        if (external is null)
            return await ShowAsync(error: "The sign-in with the provider did not complete. Try again.");
        if (!SignedInRecently)
            return await ShowAsync(error: "Sign in again to link another way of signing in.");
        var name = providers.Find(external.Provider)?.DisplayName ?? external.Provider;
        if (await users.FindByLoginAsync(external.Provider, external.Subject) is { } owner)
            return await ShowAsync(owner.Id == user.Id ? $"{name} is linked already." : null,
                owner.Id == user.Id ? null : $"That {name} account signs in to another account here: it was not linked.");
        if ((await users.GetLoginsAsync(user)).Any(l => l.LoginProvider == external.Provider))
            return await ShowAsync(error: $"Another {name} account is linked already: unlink it first.");
        await accounts.LinkAsync(user, external);
        return await ShowAsync($"{name} is linked: you can sign in with it.");
    }

    public async Task<IActionResult> OnPostUnlinkAsync(string? provider)
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        return await accounts.UnlinkAsync(user, provider ?? "") switch
        {
            ExternalAccounts.Unlinked.Removed => await ShowAsync($"{providers.Find(provider!)?.DisplayName ?? provider} is unlinked."),
            ExternalAccounts.Unlinked.LastWayIn => await ShowAsync(error: "This is your only way to sign in: set a password or link another provider first."),
            _ => await ShowAsync(error: "That provider is not linked."),
        };
    }

    async Task<IActionResult> ShowAsync(string? message = null, string? error = null)
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        (Message, Error) = (message, error);
        var linked = (await users.GetLoginsAsync(user)).Select(l => l.LoginProvider).ToHashSet(StringComparer.Ordinal);
        Rows = [.. providers.All.Select(p => new Row(p, linked.Contains(p.Name)))];
        return Page();
    }
}
