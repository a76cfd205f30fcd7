using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account.Pages;

/// <summary>
/// The device flow's verification page (RFC 8628), at OpenIddict's end-user verification endpoint: the signed-in user
/// types the code a TV or a command line shows (or arrives with it in the link), sees which app asks for what, and
/// approves or denies. OpenIddict has looked the code up before this runs; approving signs the user in for that device
/// request, whose polling then receives tokens. Razor Pages checks the antiforgery token of every POST.
/// </summary>
[Authorize]
public sealed class DeviceModel(UserManager<User> users, IOpenIddictApplicationManager applications, PrincipalFactory factory, SecurityEvents events) : PageModel
{
    public string? UserCode { get; private set; }
    public string? ApplicationName { get; private set; }
    public IReadOnlyList<string> Requests { get; private set; } = [];
    public string? Error { get; private set; }

    /// <summary>approved or denied, after a decision: where OpenIddict sends the browser once it has recorded it.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Outcome { get; set; }

    public async Task<IActionResult> OnGetAsync()
    {
        UserCode = HttpContext.GetOpenIddictServerRequest()?.UserCode;
        if (!string.IsNullOrEmpty(UserCode))
            await DescribeAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string? consent)
    {
        UserCode = HttpContext.GetOpenIddictServerRequest()?.UserCode;
        var device = await DescribeAsync();
        if (device is null)
            return Page();
        if (consent != "accept")
            return Forbid(new AuthenticationProperties { RedirectUri = "/connect/verify?outcome=denied" }, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);

        var user = await users.GetUserAsync(User);
        if (user is null)
            return Challenge();
        await events.RaiseNowAsync(EventTypes.ConsentGranted, SecurityEvents.Subject.Of(user),
            new { client = device.GetClaim(Claims.ClientId), scopes = device.GetScopes().Order(StringComparer.Ordinal), device = true });
        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var principal = await factory.ForUserAsync(user, device.GetScopes(), User.FindAll(Claims.AuthenticationMethodReference).Select(c => c.Value),
            User.FindFirst(ClaimDestinations.IdentityProvider)?.Value, ConnectEndpoints.AuthenticatedAt(session));
        return SignIn(principal, new AuthenticationProperties { RedirectUri = "/connect/verify?outcome=approved" },
            OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>The device request the code names, described for the page; null, with an error shown, when there is none.</summary>
    async Task<System.Security.Claims.ClaimsPrincipal?> DescribeAsync()
    {
        var result = await HttpContext.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        if (result.Principal?.GetClaim(Claims.ClientId) is not { } clientId || await applications.FindByClientIdAsync(clientId) is not { } application)
        {
            Error = "That code is not valid, or it has expired. Check it and try again.";
            return null;
        }
        ApplicationName = await applications.GetLocalizedDisplayNameAsync(application) ?? clientId;
        Requests = result.Principal.GetScopes().Select(s => ConsentModel.Descriptions.GetValueOrDefault(s, $"Use {s}")).ToList();
        return result.Principal;
    }
}
