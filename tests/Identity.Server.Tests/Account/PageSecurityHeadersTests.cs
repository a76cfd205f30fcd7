using System.Text.RegularExpressions;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Account;

/// <summary>The server's pages say what a browser may do with them (Account/PageSecurityHeaders); Chromium enforces it in Federation/BrowserTests.</summary>
public sealed partial class PageSecurityHeadersTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    [GeneratedRegex("'nonce-([^']+)'")]
    private static partial Regex PolicyNonce();

    [GeneratedRegex("<(script|style) nonce=\"([^\"]*)\"")]
    private static partial Regex ElementNonce();

    [Theory]
    [InlineData("/Account/Login")]
    [InlineData("/Account/Logout")]
    [InlineData("/Account/SignedOut")]
    public async Task APage_RunsOnlyItsOwnScriptsAndStyles_CannotBeFramed_AndKeepsItsAddressToItself(string path)
    {
        var first = await Http.GetAsync(path);
        var second = await Http.GetAsync(path);

        var policy = first.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", policy);
        Assert.Contains("object-src 'none'", policy);
        Assert.DoesNotContain("unsafe-inline", policy);
        var nonce = PolicyNonce().Match(policy).Groups[1].Value;
        Assert.True(nonce.Length >= 22, "a 128-bit nonce");
        // Every script and style element of the page carries this response's nonce, and the next response has another.
        Assert.All(ElementNonce().Matches(await first.Content.ReadAsStringAsync()), element => Assert.Equal(nonce, element.Groups[2].Value));
        Assert.NotEqual(nonce, PolicyNonce().Match(second.Headers.GetValues("Content-Security-Policy").Single()).Groups[1].Value);
        Assert.Equal("same-origin", first.Headers.GetValues("Referrer-Policy").Single());
        Assert.Equal("nosniff", first.Headers.GetValues("X-Content-Type-Options").Single());
    }

    [Fact]
    public async Task TheLoginPage_HasScriptsAndAStyle_AllMarked()
    {
        var html = await Http.GetStringAsync("/Account/Login");

        Assert.True(ElementNonce().Matches(html).Count >= 3, html);
        Assert.DoesNotMatch("<script>|<style>", html);
    }
}
