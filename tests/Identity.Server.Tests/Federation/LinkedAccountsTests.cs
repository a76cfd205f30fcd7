using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Federation;

/// <summary>
/// The linked accounts page (Keycloak's account console): a signed-in user links a provider by signing in with it,
/// then signs in with it alone; a provider account that belongs to someone else is refused; unlinking takes it away.
/// Microsoft answers from a local provider, as in SocialProviderTests.
/// </summary>
public sealed class LinkedAccountsTests(SocialProvidersServer server) : ServerTests<SocialProvidersServer>(server)
{
    static readonly Uri Https = new("https://localhost/");

    async Task<Browser> SignedInAsync(string email)
    {
        var browser = new Browser(Factory, Https);
        var home = await browser.LoginAsync(await browser.OpenAsync("/Account/Login"), email, Password);
        Assert.Contains("You are signed in", home.Body);
        return browser;
    }

    static Task<Browser.Page> SubmitAsync(Browser browser, Browser.Page page, string selector) =>
        browser.SubmitAsync(page with { Document = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(page.Document!.QuerySelector(selector)!.OuterHtml) });

    /// <summary>Microsoft answers the request the browser was sent with as <paramref name="subject"/>, and the browser comes back.</summary>
    async Task<Browser.Page> MicrosoftAnswersAsync(Browser browser, Browser.Page sentToMicrosoft, string subject, string email)
    {
        var query = QueryHelpers.ParseQuery(sentToMicrosoft.LeftTo!.Query);
        var code = Factory.Microsoft.Issue(new LocalProvider.Account(subject, email, false, "Mia Microsoft",
            Nonce: query["nonce"].ToString(), TenantId: Guid.NewGuid().ToString()));
        return await browser.OpenAsync($"/signin/microsoft?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(query["state"].ToString())}");
    }

    static string? Said(Browser.Page page, string role) => page.Document!.QuerySelector($"[role={role}]")?.TextContent.Trim();

    [Fact]
    public async Task ALinkedProvider_SignsTheUserIn_UntilItIsUnlinked()
    {
        var email = await CreateUserAsync();
        var subject = Guid.NewGuid().ToString();
        var browser = await SignedInAsync(email);

        var logins = await browser.OpenAsync("/Account/Logins");
        var sent = await SubmitAsync(browser, logins, "li[data-provider=microsoft] form");
        var linked = await MicrosoftAnswersAsync(browser, sent, subject, $"someone-else-{Guid.NewGuid():N}@contoso.test");

        Assert.Equal("login.microsoftonline.com", sent.LeftTo!.Host);
        Assert.Equal("Microsoft is linked: you can sign in with it.", Said(linked, "status"));
        Assert.Equal("Unlink", linked.Document!.QuerySelector("li[data-provider=microsoft] button")!.TextContent);

        var elsewhere = new Browser(Factory, Https);
        var signedIn = await MicrosoftAnswersAsync(elsewhere, await elsewhere.OpenAsync("/Account/External/microsoft?returnUrl=%2F"), subject, "whatever@contoso.test");
        Assert.Contains("You are signed in", signedIn.Body);
        Assert.Contains(email, signedIn.Body);

        var unlinked = await SubmitAsync(browser, linked, "li[data-provider=microsoft] form");
        var afterwards = new Browser(Factory, Https);
        var notSignedIn = await MicrosoftAnswersAsync(afterwards, await afterwards.OpenAsync("/Account/External/microsoft?returnUrl=%2F"), subject, "whatever@contoso.test");

        Assert.Equal("Microsoft is unlinked.", Said(unlinked, "status"));
        Assert.DoesNotContain(email, notSignedIn.Body);
    }

    [Fact]
    public async Task AProviderAccountOfSomeoneElse_IsNotLinked()
    {
        var owner = await CreateUserAsync();
        var subject = Guid.NewGuid().ToString();
        var ownersBrowser = await SignedInAsync(owner);
        await MicrosoftAnswersAsync(ownersBrowser, await SubmitAsync(ownersBrowser, await ownersBrowser.OpenAsync("/Account/Logins"), "li[data-provider=microsoft] form"),
            subject, "owner@contoso.test");

        var other = await SignedInAsync(await CreateUserAsync());
        var refused = await MicrosoftAnswersAsync(other, await SubmitAsync(other, await other.OpenAsync("/Account/Logins"), "li[data-provider=microsoft] form"),
            subject, "owner@contoso.test");

        Assert.Equal("That Microsoft account signs in to another account here: it was not linked.", Said(refused, "alert"));
        Assert.Equal("Link", refused.Document!.QuerySelector("li[data-provider=microsoft] button")!.TextContent);
        var stillTheOwners = new Browser(Factory, Https);
        var signedIn = await MicrosoftAnswersAsync(stillTheOwners, await stillTheOwners.OpenAsync("/Account/External/microsoft?returnUrl=%2F"), subject, "owner@contoso.test");
        Assert.Contains(owner, signedIn.Body);
    }
}
