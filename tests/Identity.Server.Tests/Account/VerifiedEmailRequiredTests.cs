using System.Net;
using System.Text.RegularExpressions;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Account;

public sealed class VerifiedEmailServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:SignIn:RequireVerifiedEmail", "true")]);
public sealed class VerifiedEmailSocialServer() : SocialProvidersServer([new("Identity:SignIn:RequireVerifiedEmail", "true")]);

/// <summary>
/// Identity:SignIn:RequireVerifiedEmail (Keycloak's "Verify email"): a new account gets its link and no session; the
/// right password of an unverified account is told to verify (and sent a fresh link), a wrong one learns nothing; once
/// the link is followed, every door opens.
/// </summary>
public sealed partial class VerifiedEmailRequiredTests(VerifiedEmailServer server) : ServerTests<VerifiedEmailServer>(server)
{
    [GeneratedRegex(@"https?://\S+/Account/VerifyEmail\S+")]
    private static partial Regex VerificationLink();

    static string NewEmail() => $"unverified-{Guid.NewGuid():N}@example.test";

    /// <summary>The verification links emailed to <paramref name="email"/>, oldest first.</summary>
    List<Uri> LinksSentTo(string email) => [.. Directory.GetFiles(Factory.EmailFolder).Order().Select(File.ReadAllText)
        .Where(m => m.StartsWith($"To: {email}\n", StringComparison.Ordinal)).SelectMany(m => VerificationLink().Matches(m)).Select(m => new Uri(m.Value))];

    static string Reason((HttpStatusCode Status, System.Text.Json.JsonElement Body, HttpResponseMessage Response) answer) =>
        answer.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString()!;

    [Fact]
    public async Task ApiRegistration_GivesNoTokens_TheRightPasswordIsToldToVerify_AndTheLinkOpensEveryDoor()
    {
        var email = NewEmail();

        var registered = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password, name = "Pending" });
        var apiLogin = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });
        var wrongApiLogin = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = "not the password at all" });
        var grant = await PasswordGrantAsync(email);
        var wrongGrant = await PasswordGrantAsync(email, "not the password at all");
        var links = LinksSentTo(email);

        Assert.Equal(HttpStatusCode.Accepted, registered.Status);
        Assert.True(registered.Body.GetProperty("verification_required").GetBoolean());
        Assert.False(registered.Body.TryGetProperty("access_token", out _));
        Assert.False(registered.Body.TryGetProperty("user", out _));
        Assert.Equal(HttpStatusCode.Forbidden, apiLogin.Status);
        Assert.Equal("email_not_verified", Reason(apiLogin));
        Assert.Equal(HttpStatusCode.Unauthorized, wrongApiLogin.Status);
        Assert.Equal("invalid_grant", grant.Error);
        Assert.Equal("email_not_verified", grant.Json!.Value.GetProperty("reason").GetString());
        Assert.Equal("invalid_grant", wrongGrant.Error);
        Assert.False(wrongGrant.Json!.Value.TryGetProperty("reason", out _));
        // One link at registration, a fresh one for each right password; none for the wrong ones.
        Assert.Equal(3, links.Count);

        var query = QueryHelpers.ParseQuery(links[^1].Query);
        var verified = await ApiAsync(HttpMethod.Post, "/api/v1/auth/verify-email", body: new { user_id = query["user"].ToString(), token = query["token"].ToString() });
        var after = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });

        Assert.Equal(HttpStatusCode.NoContent, verified.Status);
        Assert.Equal(HttpStatusCode.OK, after.Status);
        Assert.False(string.IsNullOrEmpty(after.Body.GetProperty("access_token").GetString()));
        Assert.False((await PasswordGrantAsync(email)).IsError);
    }

    [Fact]
    public async Task RegistrationPage_MakesTheAccountWithoutASession_AndTheLoginPageSignsInOnlyOnceTheLinkIsFollowed()
    {
        var email = NewEmail();
        var browser = new Browser(Factory);
        var authorize = AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect);

        var register = await browser.OpenAsync("/Account/Register?ReturnUrl=" + Uri.EscapeDataString(authorize));
        var made = await browser.SubmitAsync(register, new Dictionary<string, string> { ["Email"] = email, ["Password"] = Password });
        var login = await browser.OpenAsync(authorize);
        var refused = await browser.LoginAsync(login, email, Password);
        var wrong = await browser.LoginAsync(await browser.OpenAsync(authorize), email, "not the password at all");

        Assert.Equal(HttpStatusCode.OK, made.Status);
        Assert.Contains("Check your inbox", made.Document!.QuerySelector("[role=status]")!.TextContent);
        Assert.Equal("/Account/Login", login.Url.AbsolutePath);
        Assert.Equal("Verify your email address first: we sent you a link. Follow it, then sign in.",
            refused.Document!.QuerySelector("[role=alert]")!.TextContent.Trim());
        Assert.Equal("Invalid email or password.", wrong.Document!.QuerySelector("[role=alert]")!.TextContent.Trim());

        var link = LinksSentTo(email)[^1];
        await browser.OpenAsync(link.PathAndQuery);
        var signedIn = await browser.LoginAsync(await browser.OpenAsync(authorize), email, Password);

        Assert.True(QueryHelpers.ParseQuery(signedIn.LeftTo!.Query).ContainsKey("code"), signedIn.Body);
    }

    /// <summary>A taken address answers as a free one, on the API and the page; its owner is told by email instead.</summary>
    [Fact]
    public async Task RegisteringATakenAddress_AnswersAsAFreeOne_AndTellsItsOwner()
    {
        var taken = await CreateUserAsync();
        var free = NewEmail();
        var browser = new Browser(Factory);

        var forFree = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email = free, password = Password });
        var forTaken = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email = taken, password = "another long passphrase" });
        var pageForTaken = await browser.SubmitAsync(await browser.OpenAsync("/Account/Register"),
            new Dictionary<string, string> { ["Email"] = taken, ["Password"] = "another long passphrase" });
        var ownerMail = Directory.GetFiles(Factory.EmailFolder).Select(File.ReadAllText).Where(m => m.StartsWith($"To: {taken}\n", StringComparison.Ordinal)).ToList();

        Assert.Equal(forFree.Status, forTaken.Status);
        Assert.Equal(forFree.Body.ToString(), forTaken.Body.ToString());
        Assert.Contains("Check your inbox", pageForTaken.Document!.QuerySelector("[role=status]")!.TextContent);
        Assert.Null(pageForTaken.Document!.QuerySelector("[role=alert]"));
        Assert.Equal(2, ownerMail.Count);
        Assert.All(ownerMail, m => Assert.Contains("Someone tried to create an account with this email address", m));
        Assert.Empty(LinksSentTo(taken));
        // The owner's password is still theirs.
        Assert.False((await PasswordGrantAsync(taken)).IsError);
    }

    [Fact]
    public async Task AnAddressNoLongerVerified_StopsItsRefreshTokens()
    {
        var email = await CreateUserAsync();
        var tokens = await PasswordGrantAsync(email);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var userId = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(tokens.AccessToken).Subject;

        var changed = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{userId}", admin, new { email = "moved-" + email });
        var refreshed = await RefreshAsync(tokens.RefreshToken!);

        Assert.Equal(HttpStatusCode.OK, changed.Status);
        Assert.False(changed.Body.GetProperty("user").GetProperty("email_verified").GetBoolean());
        Assert.Equal("invalid_grant", refreshed.Error);
    }

    [Fact]
    public async Task VerifiedAccounts_SignInAsBefore()
    {
        var email = await CreateUserAsync();

        var tokens = await PasswordGrantAsync(email);

        Assert.False(tokens.IsError, tokens.Error);
        Assert.False((await RefreshAsync(tokens.RefreshToken!)).IsError);
    }
}

/// <summary>An account made from a provider that does not vouch for the address waits for its link like any other.</summary>
public sealed class VerifiedEmailFederationTests(VerifiedEmailSocialServer server) : ServerTests<VerifiedEmailSocialServer>(server)
{
    async Task<Browser.Page> MicrosoftSignInAsync(Browser browser, string subject, string email)
    {
        var microsoft = await browser.OpenAsync("/Account/External/microsoft?returnUrl=%2F");
        var query = QueryHelpers.ParseQuery(microsoft.LeftTo!.Query);
        var code = Factory.Microsoft.Issue(new LocalProvider.Account(subject, email, false, "Mia Microsoft",
            Nonce: query["nonce"].ToString(), TenantId: Guid.NewGuid().ToString()));
        return await browser.OpenAsync($"/signin/microsoft?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(query["state"].ToString())}");
    }

    [Fact]
    public async Task AnUnvouchedAddressFromAProvider_IsToldToVerify_AndSignsInOnceItIs()
    {
        var email = $"ms-{Guid.NewGuid():N}@contoso.test";
        var subject = Guid.NewGuid().ToString();
        var browser = new Browser(Factory, new Uri("https://localhost/"));

        var refused = await MicrosoftSignInAsync(browser, subject, email);
        var mail = Directory.GetFiles(Factory.EmailFolder).Select(File.ReadAllText).Single(m => m.StartsWith($"To: {email}\n", StringComparison.Ordinal));
        var link = new Uri(Regex.Match(mail, @"https?://\S+/Account/VerifyEmail\S+").Value);
        await browser.OpenAsync(link.PathAndQuery);
        var signedIn = await MicrosoftSignInAsync(browser, subject, email);

        Assert.Equal("/Account/Login", refused.Url.AbsolutePath);
        Assert.Equal("Verify your email address first: we sent you a link. Follow it, then sign in.",
            refused.Document!.QuerySelector("[role=alert]")!.TextContent.Trim());
        Assert.Equal("/", signedIn.Url.AbsolutePath);
        Assert.Contains("You are signed in", signedIn.Body);
    }
}
