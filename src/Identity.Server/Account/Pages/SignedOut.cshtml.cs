using Identity.Server.Sessions;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The page after a sign-out whose browser session had apps with front-channel logout (<see cref="FrontchannelLogout"/>):
/// it loads their logout pages in hidden iframes, then goes on to the app's post_logout_redirect_uri (through
/// /connect/endsession, which checks it) once they have loaded, or after a few seconds if one does not answer.
/// Without script the user follows the link. What it frames comes sealed from /connect/endsession, so a link made
/// elsewhere cannot point it at other addresses.
/// </summary>
public sealed class SignedOutModel(IDataProtectionProvider protection) : PageModel
{
    public IReadOnlyList<string> Frames { get; private set; } = [];
    public string Next { get; private set; } = "/";

    public void OnGet(string? logout)
    {
        if (FrontchannelLogout.Unprotect(protection, logout) is not { } payload)
            return;
        Frames = payload.Frames;
        Next = payload.Next;
        PageSecurityHeaders.AllowFrames(HttpContext, Frames);
    }
}
