using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;

namespace Identity.Server.Connect;

/// <summary>
/// The acr claim and acr_values (OIDC Core §2 and §3.1.2.1): how strong a sign-in was, named by OpenID PAPE's policy
/// URIs as Auth0 names them, so an app can ask for a step up and an API can check what it got (RFC 9470).
/// <list type="bullet">
/// <item>phishing-resistant: a passkey (its signature is bound to this site's origin), which is multi-factor too;</item>
/// <item>multi-factor: a second factor (a one-time code after the password or provider, or a passkey);</item>
/// <item>none: one factor only.</item>
/// </list>
/// The level follows from the sign-in's amr, so it carries over through codes and refresh tokens as amr does. An
/// authorization request whose acr_values the browser session does not meet sends the user to log in again when their
/// account can meet it (a second factor or a passkey set up); otherwise the sign-in goes on, and acr says what it was
/// (acr_values are voluntary, §5.5.1.1: the app decides what to do with a weaker sign-in).
/// </summary>
public static class AuthenticationContext
{
    public const string None = "http://schemas.openid.net/pape/policies/2007/06/none";
    public const string MultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    public const string PhishingResistant = "http://schemas.openid.net/pape/policies/2007/06/phishing-resistant";

    public static readonly string[] Supported = [PhishingResistant, MultiFactor, None];

    static int LevelOf(string acr) => acr switch
    {
        PhishingResistant => 2,
        MultiFactor => 1,
        None => 0,
        _ => -1,
    };

    /// <summary>The acr of a sign-in with these authentication methods (RFC 8176).</summary>
    public static string Of(IEnumerable<string> amr)
    {
        var methods = amr as ICollection<string> ?? [.. amr];
        return methods.Contains("hwk") ? PhishingResistant : methods.Contains(AuthenticationMethods.MultiFactor) ? MultiFactor : None;
    }

    /// <summary>The weakest level among the request's acr_values this server knows (any of them will do); null if none.</summary>
    public static int? RequestedLevel(OpenIddictRequest request)
    {
        var levels = (request.AcrValues ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(LevelOf).Where(l => l >= 0).ToList();
        return levels.Count == 0 ? null : levels.Min();
    }

    /// <summary>
    /// Whether a sign-in with <paramref name="amr"/> falls short of the request's acr_values though the user could meet
    /// them by logging in again: a second factor or a passkey for multi-factor, a passkey for phishing-resistant.
    /// </summary>
    public static async Task<bool> StepUpNeededAsync(OpenIddictRequest request, IEnumerable<string> amr, User user, UserManager<User> users,
        Mfa.MultiFactor factors)
    {
        if (RequestedLevel(request) is not { } wanted || LevelOf(Of(amr)) >= wanted)
            return false;
        var passkeys = (await users.GetPasskeysAsync(user)).Count > 0;
        return wanted >= 2 ? passkeys : passkeys || await factors.IsEnabledAsync(user.Id);
    }
}
