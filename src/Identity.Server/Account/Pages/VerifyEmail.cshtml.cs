using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The page an emailed verification link opens. Opening it verifies: the token proves the mailbox was read, by
/// whoever (or whatever scanner) opened it, and it verifies nothing but the address it was sent to.
/// </summary>
public sealed class VerifyEmailModel(UserManager<User> users, IdentityDbContext db, SecurityEvents events) : PageModel
{
    public bool Verified { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? user, string? token)
    {
        if (HttpContext.RequestServices.GetService<IEmailSender>() is null)
            return NotFound();
        Verified = await AccountEmails.VerifyEmailAsync(users, db, events, user, token);
        return Page();
    }
}
