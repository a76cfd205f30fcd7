using System.Net;
using System.Text.Json;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Sessions;

public sealed class SqliteFrontchannelLogoutTests(SqliteServer server) : FrontchannelLogoutTests<SqliteServer>(server);
public sealed class PostgreSqlFrontchannelLogoutTests(PostgreSqlServer server) : FrontchannelLogoutTests<PostgreSqlServer>(server);

/// <summary>
/// OpenID Connect Front-Channel Logout: the page after a sign-out frames the logout page of each app signed in through
/// that browser session (with iss and sid when the app asks for them), and only those, then goes on to the app's
/// post_logout_redirect_uri. The page runs in Chromium in Federation/BrowserTests; here its markup and headers.
/// </summary>
public abstract class FrontchannelLogoutTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    /// <summary>An app of its own site, with a front-channel logout page there; none when <paramref name="frontchannel"/> is null.</summary>
    async Task<(string ClientId, string Redirect)> RegisterAsync(string admin, string site, string? frontchannel, bool? sessionRequired = null)
    {
        var clientId = $"rp-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, consent_type = "implicit", grant_types = new[] { "authorization_code", "refresh_token" },
            redirect_uris = new[] { $"{site}/callback" }, post_logout_redirect_uris = new[] { $"{site}/signed-out" },
            scopes = new[] { "openid", "profile", "offline_access" }, frontchannel_logout_uri = frontchannel,
            frontchannel_logout_session_required = sessionRequired,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return (clientId, $"{site}/callback");
    }

    OidcClient Client(string clientId, string redirect) => OidcClientFor(clientId, redirect, "openid profile offline_access");

    Task<LoginResult> SignInAsync(Browser browser, (string ClientId, string Redirect) app, string? email = null) =>
        SignInThroughAsync(browser, Client(app.ClientId, app.Redirect), email);

    static string EndSessionUrl(LoginResult signedIn, string postLogoutRedirect, string state) =>
        QueryHelpers.AddQueryString("/connect/endsession", new Dictionary<string, string?>
        {
            ["id_token_hint"] = signedIn.IdentityToken, ["post_logout_redirect_uri"] = postLogoutRedirect, ["state"] = state,
        });

    static List<string> Frames(Browser.Page page) =>
        [.. page.Document!.QuerySelectorAll("iframe.frontchannel-logout").Select(f => f.GetAttribute("src")!)];

    [Fact]
    public async Task EndSession_FramesTheLogoutPagesOfTheBrowserSessionsApps_ThenGoesOnToThePostLogoutRedirect()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var withSession = await RegisterAsync(admin, "https://one.example.test", "https://one.example.test/frontchannel-logout?app=one");
        var withoutSession = await RegisterAsync(admin, "https://two.example.test:8443", "https://two.example.test:8443/logout", sessionRequired: false);
        var backChannelOnly = await RegisterAsync(admin, "https://three.example.test", null);
        var elsewhere = await RegisterAsync(admin, "https://four.example.test", "https://four.example.test/logout");
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var inOne = await SignInAsync(browser, withSession, email);
        await SignInAsync(browser, withoutSession);
        await SignInAsync(browser, backChannelOnly);
        // The same user in another browser, with the fourth app: that browser session stays, and so does its app.
        var inFour = await SignInAsync(new Browser(Factory), elsewhere, email);

        var signedOut = await browser.OpenAsync(EndSessionUrl(inOne, "https://one.example.test/signed-out", "bye"));
        var frames = Frames(signedOut);
        using var headers = await Http.GetAsync(signedOut.Url.PathAndQuery);
        var next = signedOut.Document!.QuerySelector("a#next")!.GetAttribute("href")!;
        var arrived = await browser.OpenAsync(next);

        var sid = inOne.User.FindFirst("sid")!.Value;
        Assert.Equal(HttpStatusCode.OK, signedOut.Status);
        Assert.Equal("/Account/SignedOut", signedOut.Url.AbsolutePath);
        Assert.Equal(2, frames.Count);
        var one = new Uri(frames.Single(f => f.StartsWith("https://one.example.test/", StringComparison.Ordinal)));
        var query = QueryHelpers.ParseQuery(one.Query);
        Assert.Equal("/frontchannel-logout", one.AbsolutePath);
        Assert.Equal("one", query["app"].ToString());
        Assert.Equal(new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(inOne.IdentityToken).Issuer, query["iss"].ToString());
        Assert.Equal(sid, query["sid"].ToString());
        Assert.Contains("https://two.example.test:8443/logout", frames);
        Assert.DoesNotContain(frames, f => f.Contains("four.example.test", StringComparison.Ordinal));
        var csp = headers.Headers.GetValues("Content-Security-Policy").Single();
        var frameSources = csp.Split("; frame-src ")[1].Split(' ');
        Assert.Equal(["https://one.example.test", "https://two.example.test:8443"], frameSources.Order(StringComparer.Ordinal));
        Assert.StartsWith("/connect/endsession?", next);
        Assert.DoesNotContain("id_token_hint", next);
        Assert.Equal(new Uri("https://one.example.test/signed-out?state=bye"), arrived.LeftTo);
        // Signed out for real: the sessions of this browser are over, the other browser's is not.
        Assert.True((await Client(withSession.ClientId, withSession.Redirect).RefreshTokenAsync(inOne.RefreshToken)).IsError);
        Assert.False((await Client(elsewhere.ClientId, elsewhere.Redirect).RefreshTokenAsync(inFour.RefreshToken)).IsError);
        Assert.Equal("/Account/Login", (await browser.OpenAsync((await Client(withSession.ClientId, withSession.Redirect).PrepareLoginAsync()).StartUrl)).Url.AbsolutePath);
    }

    [Fact]
    public async Task EndSession_WithoutFrontChannelApps_RedirectsStraightAway()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var app = await RegisterAsync(admin, "https://plain.example.test", null);
        var browser = new Browser(Factory);
        var signedIn = await SignInAsync(browser, app, await CreateUserAsync());

        var signedOut = await browser.OpenAsync(EndSessionUrl(signedIn, "https://plain.example.test/signed-out", "s"));

        Assert.Equal(new Uri("https://plain.example.test/signed-out?state=s"), signedOut.LeftTo);
    }

    [Theory]
    [InlineData("not-sealed")]
    [InlineData("altered")]
    public async Task SignedOutPage_FramesNothing_FromAPayloadItDidNotSeal(string kind)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var app = await RegisterAsync(admin, "https://sealed.example.test", "https://sealed.example.test/logout");
        var browser = new Browser(Factory);
        var signedIn = await SignInAsync(browser, app, await CreateUserAsync());
        var real = await browser.OpenAsync(EndSessionUrl(signedIn, "https://sealed.example.test/signed-out", "s"));
        var payload = QueryHelpers.ParseQuery(real.Url.Query)["logout"].ToString();
        var forged = kind == "altered" ? payload[..^4] + (payload[^4] == 'A' ? 'B' : 'A') + payload[^3..] : "https://evil.example.test/";

        using var answer = await Http.GetAsync("/Account/SignedOut?logout=" + Uri.EscapeDataString(forged));
        var html = await answer.Content.ReadAsStringAsync();

        Assert.Single(Frames(real));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.DoesNotContain("<iframe", html);
        Assert.DoesNotContain("frame-src", answer.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Contains("href=\"/\"", html);
    }

    [Fact]
    public async Task ClientsApi_KeepsTheFrontChannelUri_AndRefusesOneOffTheAppsOwnSite()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var (clientId, _) = await RegisterAsync(admin, "https://kept.example.test", "https://kept.example.test/logout", sessionRequired: false);

        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin);
        var renamed = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { display_name = "Renamed" });
        var otherHost = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { frontchannel_logout_uri = "https://evil.example.test/logout" });
        var otherPort = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { frontchannel_logout_uri = "https://kept.example.test:444/logout" });
        var notHttp = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { frontchannel_logout_uri = "javascript:alert(1)" });
        var after = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin);

        Assert.Equal("https://kept.example.test/logout", read.Body.GetProperty("client").GetProperty("frontchannel_logout_uri").GetString());
        Assert.False(read.Body.GetProperty("client").GetProperty("frontchannel_logout_session_required").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, renamed.Status);
        Assert.Equal("https://kept.example.test/logout", renamed.Body.GetProperty("client").GetProperty("frontchannel_logout_uri").GetString());
        foreach (var refused in new[] { otherHost, otherPort, notHttp })
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
            Assert.Equal("frontchannel_logout_uri", refused.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        }
        Assert.Equal("https://kept.example.test/logout", after.Body.GetProperty("client").GetProperty("frontchannel_logout_uri").GetString());
        Assert.Equal("Renamed", after.Body.GetProperty("client").GetProperty("display_name").GetString());

        // An empty URI takes it away, so the app's redirect URIs can move to another site.
        var cleared = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { frontchannel_logout_uri = "" });
        var moved = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { redirect_uris = new[] { "https://moved.example.test/callback" } });
        Assert.Equal(System.Text.Json.JsonValueKind.Null, cleared.Body.GetProperty("client").GetProperty("frontchannel_logout_uri").ValueKind);
        Assert.Equal(HttpStatusCode.OK, moved.Status);
    }

    [Fact]
    public async Task Discovery_AdvertisesFrontchannelLogoutWithSessions()
    {
        using var discovery = JsonDocument.Parse(await Http.GetStringAsync("/.well-known/openid-configuration"));

        Assert.True(discovery.RootElement.GetProperty("frontchannel_logout_supported").GetBoolean());
        Assert.True(discovery.RootElement.GetProperty("frontchannel_logout_session_supported").GetBoolean());
    }
}
