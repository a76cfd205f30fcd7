using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account.Pages;

/// <summary>Asks for the address and emails a reset link; the page says the same whether the address has an account or not.</summary>
public sealed class ForgotPasswordModel(UserManager<User> users, RateLimitCounters counters, ILogger<ForgotPasswordModel> logger) : PageModel
{
    [BindProperty] public string? Email { get; set; }
    public bool Sent { get; private set; }

    public IActionResult OnGet() => HttpContext.RequestServices.GetService<IEmailSender>() is null ? NotFound() : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.RequestServices.GetService<IEmailSender>() is not { } sender)
            return NotFound();
        if (!string.IsNullOrWhiteSpace(Email))
            await AccountEmails.RequestResetAsync(HttpContext, users, sender, counters, logger, Email);
        Sent = true;
        return Page();
    }
}
