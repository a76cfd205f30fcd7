using System.Text.Json;
using Identity.Server.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Server.Sessions;

/// <summary>
/// OpenID Connect Front-Channel Logout 1.0: when the user signs out in the browser, the page that says so loads each
/// app's frontchannel_logout_uri in a hidden iframe, so apps that keep their own browser session (a cookie of theirs)
/// end it too, as Keycloak's and Duende's logout pages do. Only the apps signed in through that browser session are
/// loaded; an app that asks for it (frontchannel_logout_session_required, the default) gets iss and sid, the same
/// sid as in its identity token, to tell which of its sessions ended. Back-channel logout reaches apps without the
/// browser, and also when a session is ended through the API.
/// </summary>
public static class FrontchannelLogout
{
    public const string Property = "frontchannel_logout_uri";
    public const string SessionRequiredProperty = "frontchannel_logout_session_required";

    /// <summary>How long the sign-out page's payload may be opened: it is made and followed in one redirect.</summary>
    static readonly TimeSpan PayloadLifetime = TimeSpan.FromMinutes(5);

    const string Purpose = "Identity.Server.Sessions.FrontchannelLogout";

    /// <summary>What the signed-out page shows: the apps' logout addresses to load, and where to go after them.</summary>
    public sealed record Payload(IReadOnlyList<string> Frames, string Next);

    /// <summary>The client's front-channel logout URI and whether it wants iss and sid, if it registered one.</summary>
    public static async Task<(string Uri, bool SessionRequired)?> OfAsync(IOpenIddictApplicationManager applications, object application)
    {
        var properties = await applications.GetPropertiesAsync(application);
        if (!properties.TryGetValue(Property, out var uri) || uri.ValueKind != JsonValueKind.String)
            return null;
        var required = !properties.TryGetValue(SessionRequiredProperty, out var flag) || flag.ValueKind != JsonValueKind.False;
        return (uri.GetString()!, required);
    }

    /// <summary>
    /// The front-channel logout addresses of the apps signed in through the browser session <paramref name="sid"/>,
    /// each with iss and sid when its app asked for them (§2, §3 of the spec); read before the sessions end.
    /// </summary>
    public static async Task<IReadOnlyList<string>> FramesAsync(IdentityDbContext db, IOpenIddictApplicationManager applications,
        string userId, string sid, string issuer)
    {
        var clientIds = await db.Sessions.AsNoTracking().Where(s => s.Sid == sid && s.UserId == userId && s.ClientId != null)
            .Select(s => s.ClientId!).Distinct().ToListAsync();
        var frames = new List<string>();
        foreach (var clientId in clientIds.Order(StringComparer.Ordinal))
            if (await applications.FindByClientIdAsync(clientId) is { } application && await OfAsync(applications, application) is var (uri, required))
                frames.Add(required ? QueryHelpers.AddQueryString(uri, new Dictionary<string, string?> { ["iss"] = issuer, ["sid"] = sid }) : uri);
        return frames;
    }

    /// <summary>Seals the page's payload for the redirect to it, so nobody can make the page frame other addresses.</summary>
    public static string Protect(IDataProtectionProvider protection, Payload payload) =>
        protection.CreateProtector(Purpose).ToTimeLimitedDataProtector().Protect(JsonSerializer.Serialize(payload), PayloadLifetime);

    /// <summary>The payload of <see cref="Protect"/>, or null if it was altered, made by other keys or is too old.</summary>
    public static Payload? Unprotect(IDataProtectionProvider protection, string? sealedPayload)
    {
        if (string.IsNullOrEmpty(sealedPayload))
            return null;
        try
        {
            return JsonSerializer.Deserialize<Payload>(protection.CreateProtector(Purpose).ToTimeLimitedDataProtector().Unprotect(sealedPayload));
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or JsonException or FormatException)
        {
            return null;
        }
    }
}
