using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>The page an emailed reset link opens: the token travels in the link, the new password in the form.</summary>
public sealed class ResetPasswordModel(UserManager<User> users, SecurityEvents events, Sessions.SessionStore sessions) : PageModel
{
    [BindProperty(SupportsGet = true, Name = "user")] public string? UserId { get; set; }
    [BindProperty(SupportsGet = true)] public string? Token { get; set; }
    [BindProperty] public string? NewPassword { get; set; }
    public string? Error { get; private set; }
    public bool Done { get; private set; }

    public IActionResult OnGet() => HttpContext.RequestServices.GetService<IEmailSender>() is null ? NotFound() : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.RequestServices.GetService<IEmailSender>() is null)
            return NotFound();
        var (result, _) = await AccountEmails.ResetPasswordAsync(users, events, sessions, UserId, Token, NewPassword ?? "");
        Error = result switch
        {
            null => "This link is not valid or has expired. Ask for a new one on the sign-in page.",
            { Succeeded: false } => result.Errors.First().Description,
            _ => null,
        };
        Done = Error is null;
        return Page();
    }
}
