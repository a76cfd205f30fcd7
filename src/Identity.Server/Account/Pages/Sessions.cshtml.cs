using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Sessions;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;

namespace Identity.Server.Account.Pages;

/// <summary>
/// Where the user is signed in and which apps they allowed, with a way to end each (Keycloak's account console,
/// "Device activity" and "Applications"; Google's "Your devices" and "Third-party access"): the same sessions and
/// consents as /api/v1/auth/me/sessions and /me/consents, through <see cref="SessionStore"/> and <see cref="ConsentsApi"/>.
/// Signing out everywhere else also ends other browsers' sessions (a new security stamp), keeping this one.
/// </summary>
[Authorize]
public sealed class SessionsModel(UserManager<User> users, SignInManager<User> signIn, SessionStore store,
    IOpenIddictAuthorizationManager authorizations, IOpenIddictApplicationManager applications, SecurityEvents events) : PageModel
{
    public IReadOnlyList<SessionsApi.SessionView> Sessions { get; private set; } = [];
    /// <summary>The sessions of apps signed in through this browser.</summary>
    public IReadOnlySet<string> HereIds { get; private set; } = new HashSet<string>();
    public IReadOnlyList<ConsentsApi.ConsentView> Apps { get; private set; } = [];
    public string? Message { get; private set; }

    string? Sid => User.FindFirst(ClaimDestinations.SessionId)?.Value;

    public async Task<IActionResult> OnGetAsync() => await ShowAsync();

    public async Task<IActionResult> OnPostEndAsync(string? id)
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        var ended = id is not null && await store.RevokeAsync(user.Id, id);
        return await ShowAsync(ended ? "That session is signed out." : "That session had already ended.");
    }

    public async Task<IActionResult> OnPostElsewhereAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        var ended = await store.RevokeElsewhereAsync(user.Id, Sid);
        // Other browsers' cookies carry the old stamp: they are refused at their next check, within a minute.
        await users.UpdateSecurityStampAsync(user);
        await BrowserSession.RenewAsync(signIn, HttpContext, user);
        return await ShowAsync(ended == 1 ? "1 session elsewhere is signed out, and so are other browsers."
            : $"{ended} sessions elsewhere are signed out, and so are other browsers.");
    }

    public async Task<IActionResult> OnPostWithdrawAsync(string? clientId)
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        var withdrawn = clientId is not null && await ConsentsApi.WithdrawAsync(user.Id, clientId, authorizations, applications, store, events);
        return await ShowAsync(withdrawn ? "The app no longer has access: it must ask you again." : "That app had no access left.");
    }

    async Task<IActionResult> ShowAsync(string? message = null)
    {
        if (await users.GetUserAsync(User) is not { } user)
            return Challenge();
        Message = message;
        Sessions = await store.ListAsync(user.Id, current: null);
        var sid = Sid;
        HereIds = sid is null ? new HashSet<string>() : (await store.OfBrowserSessionAsync(user.Id, sid)).ToHashSet();
        Apps = await ConsentsApi.ListAsync(user.Id, authorizations, applications);
        return Page();
    }
}
