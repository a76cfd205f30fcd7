using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account;

/// <summary>The browser session the login and registration pages start, which /connect/authorize then signs apps in from.</summary>
public static class BrowserSession
{
    /// <summary>
    /// Signs <paramref name="user"/> in with the session cookie: how (amr), when (auth_time, which max_age and the
    /// sign-in maximum count from), through which provider (idp) and a new browser session id (sid). "Keep me signed in"
    /// makes the cookie outlive the browser, for as long as a remembered login's refresh tokens.
    /// </summary>
    public static async Task SignInAsync(SignInManager<User> signIn, SecurityEvents events, TimeProvider time, Connect.TokenOptions tokens, User user,
        string[] methods, string? identityProvider, bool rememberMe, string source)
    {
        var claims = methods.Select(m => new Claim(Claims.AuthenticationMethodReference, m)).ToList();
        claims.Add(new Claim(Claims.AuthenticationTime, time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
        if (identityProvider is not null)
            claims.Add(new Claim(ClaimDestinations.IdentityProvider, identityProvider));
        // The browser session's id: every app signed in through this cookie learns it (sid), so that signing out here
        // can tell each of them which session ended (back-channel logout).
        claims.Add(new Claim(ClaimDestinations.SessionId, WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(16))));
        await signIn.SignInWithClaimsAsync(user, rememberMe
            ? new AuthenticationProperties { IsPersistent = true, ExpiresUtc = time.GetUtcNow() + tokens.RefreshTokenLifetime }
            : new AuthenticationProperties(), claims);
        await events.RaiseNowAsync(EventTypes.AuthLogin, SecurityEvents.Subject.Of(user), new { amr = methods, provider = identityProvider, source });
    }

    /// <summary>
    /// The claims of the sign-in itself (how and when the user authenticated, through which provider, the browser
    /// session's id), which exist only in the cookie: a rebuilt cookie must keep them, or later tokens would lose their
    /// MFA evidence, max_age would count from the rebuild and logout could not name the session.
    /// </summary>
    public static IEnumerable<Claim> SignInClaims(ClaimsPrincipal session) =>
        session.Claims.Where(c => c.Type is Claims.AuthenticationMethodReference or Claims.AuthenticationTime or ClaimDestinations.IdentityProvider
            or ClaimDestinations.SessionId).Select(c => new Claim(c.Type, c.Value, c.ValueType));

    /// <summary>
    /// Issues this browser's cookie again for <paramref name="user"/>'s new security stamp (after they changed their
    /// password here), keeping the sign-in and the cookie's lifetime: the change ends browser sessions elsewhere, not this one.
    /// </summary>
    public static async Task RenewAsync(SignInManager<User> signIn, HttpContext http, User user)
    {
        var session = await http.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        await signIn.SignInWithClaimsAsync(user, session.Properties ?? new AuthenticationProperties(), SignInClaims(http.User));
    }
}
