using System.Net;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Connect;

/// <summary>
/// login_hint (OIDC Core §3.1.2.1): the app's guess at who signs in fills in the login page's email, as text (never
/// markup), and only fills it in: the password still decides. An absurdly long one is left out.
/// </summary>
public sealed class LoginHintTests(SqliteServer factory) : ServerTests<SqliteServer>(factory)
{
    [Fact]
    public async Task LoginHint_FillsInTheEmail_AsText()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);

        var hinted = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, ("login_hint", email)));
        var markup = await new Browser(Factory).OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, ("login_hint", "\"><script>alert(1)</script>")));
        var tooLong = await new Browser(Factory).OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, ("login_hint", new string('a', 300) + "@example.test")));
        var back = await browser.SubmitAsync(hinted, new Dictionary<string, string> { ["Password"] = Password });

        Assert.Equal(email, hinted.Document!.QuerySelector("input[name=Email]")!.GetAttribute("value"));
        Assert.Equal("\"><script>alert(1)</script>", markup.Document!.QuerySelector("input[name=Email]")!.GetAttribute("value"));
        Assert.DoesNotContain("<script>alert(1)", markup.Body);
        Assert.True(string.IsNullOrEmpty(tooLong.Document!.QuerySelector("input[name=Email]")!.GetAttribute("value")));
        Assert.Equal(new Uri(ServerFactory.WebRedirect).Authority, back.LeftTo?.Authority);
        Assert.Equal(HttpStatusCode.OK, hinted.Status);
    }
}
