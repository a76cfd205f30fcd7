using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;

namespace Identity.Server.Account.Pages;

/// <summary>
/// Shows what a client asks for and posts the user's decision, with the original authorization request, back to
/// /connect/authorize, which validates the request again and checks the antiforgery token. A pushed request goes
/// back as it came, client_id and request_uri: the scope beside them was only for this page to show.
/// </summary>
[Authorize]
public sealed class ConsentModel(IOpenIddictApplicationManager applications) : PageModel
{
    internal static readonly Dictionary<string, string> Descriptions = new(StringComparer.Ordinal)
    {
        [OpenIddictConstants.Scopes.OpenId] = "Sign you in",
        [OpenIddictConstants.Scopes.Profile] = "See your name",
        [OpenIddictConstants.Scopes.Email] = "See your email address",
        [OpenIddictConstants.Scopes.Roles] = "See your roles",
        [OpenIddictConstants.Scopes.OfflineAccess] = "Stay signed in when you are not using it",
    };

    public string ApplicationName { get; private set; } = "";

    /// <summary>The app registered itself (dynamic registration): nobody running this server vetted it.</summary>
    public bool SelfRegistered { get; private set; }
    public IReadOnlyList<string> Requests { get; private set; } = [];
    public IReadOnlyList<KeyValuePair<string, string?>> Parameters { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync()
    {
        var application = await applications.FindByClientIdAsync(Request.Query[OpenIddictConstants.Parameters.ClientId].ToString());
        if (application is null)
            return BadRequest();

        ApplicationName = await applications.GetLocalizedDisplayNameAsync(application) ?? await applications.GetClientIdAsync(application) ?? "";
        SelfRegistered = (await applications.GetPropertiesAsync(application)).ContainsKey(Clients.DynamicRegistration.Property);
        Requests = Request.Query[OpenIddictConstants.Parameters.Scope].ToString()
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => Descriptions.GetValueOrDefault(s, $"Use {s}"))
            .ToList();
        var pushed = Request.Query.ContainsKey(OpenIddictConstants.Parameters.RequestUri);
        // A pushed request comes back as it was sent, with the note of a login it asked for (not asked for again).
        Parameters = Request.Query.Where(p => !pushed || p.Key is OpenIddictConstants.Parameters.ClientId or OpenIddictConstants.Parameters.RequestUri or Connect.ConnectEndpoints.LoginAskedField)
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v))).ToList();
        return Page();
    }
}
