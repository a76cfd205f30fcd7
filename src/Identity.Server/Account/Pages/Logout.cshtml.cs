using Identity.Server.Data;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// Asks before signing out when the request does not prove it comes from an app of this user (no identity token of
/// theirs): a plain link on any site could otherwise sign people out. Posts back to /connect/endsession, with the
/// original parameters, which checks the antiforgery token.
/// </summary>
[Authorize]
public sealed class LogoutModel(UserManager<User> users) : PageModel
{
    public string Email { get; private set; } = "";
    public IReadOnlyList<KeyValuePair<string, string?>> Parameters { get; private set; } = [];

    public async Task OnGetAsync()
    {
        Email = (await users.GetUserAsync(User))?.Email ?? "";
        Parameters = Request.Query.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v))).ToList();
    }
}
