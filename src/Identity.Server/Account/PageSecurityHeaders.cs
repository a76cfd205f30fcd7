using System.Buffers.Text;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Mvc.Filters;

namespace Identity.Server.Account;

/// <summary>
/// The headers Keycloak puts on its login pages, for every page of this server (login, consent, passkeys, device,
/// password reset, logout). A Content-Security-Policy runs only the pages' own scripts and styles, marked with a nonce
/// made per response, so markup that slipped into a page (a client's display name, say) cannot run script or load
/// anything from elsewhere; no site may frame the pages, which take passwords and consent (clickjacking); the pages'
/// addresses, which carry authorization requests, are not sent to other sites as a Referer (same-origin, not
/// Keycloak's no-referrer: with that, browsers send "Origin: null" with the pages' own form posts, and the passkey
/// check needs the real origin); nothing is sniffed as another type. Not form-action: a login or consent form ends
/// in a redirect to the app, which the browser would check against it.
/// </summary>
public sealed class PageSecurityHeaders(Branding branding) : IAsyncPageFilter
{
    const string NonceKey = "identity.csp-nonce";

    /// <summary>The nonce a page's own script and style elements carry (<c>nonce="@PageSecurityHeaders.NonceOf(Context)"</c>).</summary>
    public static string NonceOf(HttpContext http) => http.Items[NonceKey] as string ?? "";

    /// <summary>
    /// Lets the page frame <paramref name="addresses"/>' origins (the sign-out page loads the apps' front-channel logout
    /// pages); every other page frames nothing but its own.
    /// </summary>
    public static void AllowFrames(HttpContext http, IEnumerable<string> addresses)
    {
        var origins = addresses.Select(a => new Uri(a).GetLeftPart(UriPartial.Authority)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (origins.Count > 0)
            http.Response.Headers.ContentSecurityPolicy += "; frame-src " + string.Join(' ', origins);
    }

    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var http = context.HttpContext;
        var nonce = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));
        http.Items[NonceKey] = nonce;
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = $"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:{(branding.LogoOrigin is { } logo ? " " + logo : "")}; " +
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
        headers["Referrer-Policy"] = "same-origin";
        headers.XContentTypeOptions = "nosniff";
        return next();
    }
}
