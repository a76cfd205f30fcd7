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
}
