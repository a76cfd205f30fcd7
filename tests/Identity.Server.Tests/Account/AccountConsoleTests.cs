using System.Net;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Account;

/// <summary>
/// The account pages a signed-in user manages their account with, as in Keycloak's account console: the password page
/// (/Account/Password) and where they are signed in and which apps they allowed (/Account/Sessions).
/// </summary>
public sealed class AccountConsoleTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    const string NewPassword = "a brand new passphrase here";

    OidcClient Spa() => OidcClientFor(ServerFactory.Spa, ServerFactory.SpaRedirect, "openid profile offline_access identity");

    Task<LoginResult> SignInToTheSpaAsync(Browser browser, string? email = null) => SignInThroughAsync(browser, Spa(), email);

    Task<Browser.Page> ChangePasswordAsync(Browser browser, Browser.Page page, string current, string replacement, string? confirm = null) =>
        browser.SubmitAsync(page, new Dictionary<string, string>
        {
            ["CurrentPassword"] = current, ["NewPassword"] = replacement, ["ConfirmPassword"] = confirm ?? replacement,
        });

    /// <summary>Submits one of the page's several forms (one per session, one per app), as clicking its button would.</summary>
    static Task<Browser.Page> SubmitAsync(Browser browser, Browser.Page page, AngleSharp.Dom.IElement form) =>
        browser.SubmitAsync(page with { Document = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(form.OuterHtml) });

    static string AuthTime(LoginResult signedIn) =>
        new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(signedIn.IdentityToken).GetClaim("auth_time").Value;

    static string? Said(Browser.Page page, string selector) => page.Document!.QuerySelector(selector)?.TextContent.Trim();

    [Fact]
    public async Task PasswordPage_ChangesThePassword_EndsSessionsElsewhere_AndKeepsThisBrowserSignedIn()
    {
        var email = await CreateUserAsync();
        var elsewhere = await PasswordGrantAsync(email);
        var browser = new Browser(Factory);
        var here = await SignInToTheSpaAsync(browser, email);

        var cookiesBefore = browser.SetCookies.Count(c => c.StartsWith("identity.session=", StringComparison.Ordinal));
        var changed = await ChangePasswordAsync(browser, await browser.OpenAsync("/Account/Password"), Password, NewPassword);

        Assert.Equal("Your password is changed, and 1 other session was signed out.", Said(changed, "[role=status]"));
        Assert.True((await RefreshAsync(elsewhere.RefreshToken!)).IsError);
        Assert.False((await Spa().RefreshTokenAsync(here.RefreshToken)).IsError);
        Assert.True((await PasswordGrantAsync(email)).IsError);
        Assert.False((await PasswordGrantAsync(email, NewPassword)).IsError);
        // Its cookie was issued again with the new security stamp (the old one is refused at its next check, within a
        // minute), and it is still signed in, with the sign-in it had: the next app sign-in needs no login page.
        Assert.Equal(cookiesBefore + 1, browser.SetCookies.Count(c => c.StartsWith("identity.session=", StringComparison.Ordinal)));
        var again = await SignInToTheSpaAsync(browser);
        Assert.Equal(here.User.FindFirst("sid")!.Value, again.User.FindFirst("sid")!.Value);
        Assert.Equal(AuthTime(here), AuthTime(again));
    }

    [Theory]
    [InlineData("wrong current", "Your current password is not right.")]
    [InlineData("mismatch", "The new password and its confirmation differ.")]
    [InlineData("too short", "Passwords must be at least 12 characters.")]
    public async Task PasswordPage_RefusesABadChange_AndTheOldPasswordStillWorks(string flaw, string said)
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        await SignInToTheSpaAsync(browser, email);
        var page = await browser.OpenAsync("/Account/Password");

        var refused = flaw switch
        {
            "wrong current" => await ChangePasswordAsync(browser, page, "not the password at all", NewPassword),
            "mismatch" => await ChangePasswordAsync(browser, page, Password, NewPassword, NewPassword + "!"),
            _ => await ChangePasswordAsync(browser, page, Password, "short"),
        };

        Assert.Equal(HttpStatusCode.OK, refused.Status);
        Assert.Equal(said, Said(refused, "[role=alert]"));
        Assert.False((await PasswordGrantAsync(email)).IsError);
        Assert.True((await PasswordGrantAsync(email, NewPassword)).IsError);
    }

    [Fact]
    public async Task AccountPages_SendAStrangerToTheLoginPage()
    {
        var browser = new Browser(Factory);

        foreach (var path in new[] { "/Account/Password", "/Account/Sessions" })
            Assert.Equal("/Account/Login", (await browser.OpenAsync(path)).Url.AbsolutePath);
    }

    [Fact]
    public async Task SessionsPage_ListsWhereTheUserIsSignedIn_AndSignsOutOneOfThem()
    {
        var email = await CreateUserAsync();
        var elsewhere = await PasswordGrantAsync(email);
        var browser = new Browser(Factory);
        var here = await SignInToTheSpaAsync(browser, email);

        var page = await browser.OpenAsync("/Account/Sessions");
        var sessions = page.Document!.QuerySelectorAll("ul.sessions > li").ToList();
        var other = sessions.Single(s => !s.TextContent.Contains("(this browser)"));
        var after = await SubmitAsync(browser, page, other.QuerySelector("form")!);

        Assert.Equal(2, sessions.Count);
        Assert.Contains(ServerFactory.Web, other.TextContent);
        Assert.Contains("(this browser)", sessions.Single(s => s != other).TextContent);
        Assert.Equal("That session is signed out.", Said(after, "[role=status]"));
        Assert.Single(after.Document!.QuerySelectorAll("ul.sessions > li"));
        Assert.True((await RefreshAsync(elsewhere.RefreshToken!)).IsError);
        Assert.False((await Spa().RefreshTokenAsync(here.RefreshToken)).IsError);
    }

    [Fact]
    public async Task SessionsPage_SignsOutEverywhereElse_ButThisBrowser()
    {
        var email = await CreateUserAsync();
        var elsewhere = await PasswordGrantAsync(email);
        var otherBrowser = await SignInToTheSpaAsync(new Browser(Factory), email);
        var browser = new Browser(Factory);
        var here = await SignInToTheSpaAsync(browser, email);

        var page = await browser.OpenAsync("/Account/Sessions");
        var after = await SubmitAsync(browser, page, page.Document!.QuerySelectorAll("form").Last(f => f.TextContent.Contains("everywhere else")));

        Assert.Equal("2 sessions elsewhere are signed out, and so are other browsers.", Said(after, "[role=status]"));
        Assert.True((await RefreshAsync(elsewhere.RefreshToken!)).IsError);
        Assert.True((await Spa().RefreshTokenAsync(otherBrowser.RefreshToken)).IsError);
        Assert.False((await Spa().RefreshTokenAsync(here.RefreshToken)).IsError);
        Assert.Equal(here.User.FindFirst("sid")!.Value, (await SignInToTheSpaAsync(browser)).User.FindFirst("sid")!.Value);
    }

    [Fact]
    public async Task SessionsPage_ShowsTheAppsAllowed_AndRemovingOneMakesItAskAgain()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var signedIn = await SignInToTheSpaAsync(browser, email);

        var page = await browser.OpenAsync("/Account/Sessions");
        var app = page.Document!.QuerySelector($"ul.apps > li[data-client='{ServerFactory.Spa}']");
        var after = await SubmitAsync(browser, page, app!.QuerySelector("form")!);
        var next = await browser.OpenAsync((await Spa().PrepareLoginAsync()).StartUrl);

        Assert.Contains("Single-page app", app.TextContent);
        Assert.Contains("offline_access", app.TextContent);
        Assert.Equal("The app no longer has access: it must ask you again.", Said(after, "[role=status]"));
        Assert.Null(after.Document!.QuerySelector("ul.apps"));
        Assert.True((await Spa().RefreshTokenAsync(signedIn.RefreshToken)).IsError);
        Assert.Equal("/Account/Consent", next.Url.AbsolutePath);
    }
}
