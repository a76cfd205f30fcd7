using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Account;

public sealed class SqliteAccountEmailTests(SqliteServer server) : AccountEmailTests<SqliteServer>(server);
public sealed class PostgreSqlAccountEmailTests(PostgreSqlServer server) : AccountEmailTests<PostgreSqlServer>(server);

/// <summary>
/// Password reset and address verification through emailed links, read from the development sender's folder as a
/// user reads their inbox: the API and the pages, single-use links, and no hint of which addresses have accounts.
/// </summary>
public abstract partial class AccountEmailTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    const string NewPassword = "a brand new passphrase";

    [GeneratedRegex(@"https?://\S+")]
    private static partial Regex Url();

    /// <summary>The emails sent to <paramref name="email"/> so far, oldest first.</summary>
    List<string> Inbox(string email) => [.. Directory.GetFiles(Factory.EmailFolder).Order()
        .Select(File.ReadAllText).Where(m => m.StartsWith($"To: {email}\n", StringComparison.Ordinal))];

    /// <summary>The link of the latest email to <paramref name="email"/> that leads to <paramref name="page"/>.</summary>
    Uri LinkSentTo(string email, string page)
    {
        var link = Inbox(email).SelectMany(m => Url().Matches(m)).Select(m => new Uri(m.Value)).LastOrDefault(u => u.AbsolutePath == page);
        Assert.True(link is not null, $"no email to {email} links to {page}");
        return link!;
    }

    static (string User, string Token) Parts(Uri link)
    {
        var query = QueryHelpers.ParseQuery(link.Query);
        return (query["user"].ToString(), query["token"].ToString());
    }

    [Fact]
    public async Task ForgotPassword_TheEmailedTokenSetsANewPasswordOnce_AndEndsEverySession()
    {
        var email = await CreateUserAsync();
        var session = await PasswordGrantAsync(email);

        var forgot = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email });
        var (user, token) = Parts(LinkSentTo(email, "/Account/ResetPassword"));
        var weak = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/reset", body: new { user_id = user, token, new_password = "short" });
        var reset = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/reset", body: new { user_id = user, token, new_password = NewPassword });
        var again = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/reset", body: new { user_id = user, token, new_password = "yet another passphrase" });

        Assert.Equal(HttpStatusCode.Accepted, forgot.Status);
        Assert.Equal("new_password", weak.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.NoContent, reset.Status);
        Assert.Equal("invalid_token", again.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal("invalid_grant", (await RefreshAsync(session.RefreshToken!)).Error);
        Assert.True((await PasswordGrantAsync(email)).IsError);
        Assert.False((await PasswordGrantAsync(email, NewPassword)).IsError);
    }

    [Fact]
    public async Task ForgotPassword_UnknownAddress_SameAnswer_NoEmail()
    {
        var known = await CreateUserAsync();
        var unknown = $"nobody-{Guid.NewGuid():N}@example.test";

        var forKnown = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email = known });
        var forUnknown = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email = unknown });

        Assert.Equal(forKnown.Status, forUnknown.Status);
        Assert.Equal(forKnown.Body.ToString(), forUnknown.Body.ToString());
        Assert.Single(Inbox(known));
        Assert.Empty(Inbox(unknown));
    }

    [Fact]
    public async Task ResetPassword_ForgedOrOtherAccountsToken_IsRefused()
    {
        var victim = await CreateUserAsync();
        var attacker = await CreateUserAsync();
        await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email = attacker });
        var (attackerId, attackerToken) = Parts(LinkSentTo(attacker, "/Account/ResetPassword"));
        await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email = victim });
        var (victimId, _) = Parts(LinkSentTo(victim, "/Account/ResetPassword"));

        var withOtherToken = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/reset", body: new { user_id = victimId, token = attackerToken, new_password = NewPassword });
        var withForged = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/reset", body: new { user_id = victimId, token = "forged", new_password = NewPassword });

        Assert.NotEqual(attackerId, victimId);
        Assert.Equal("invalid_token", withOtherToken.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal("invalid_token", withForged.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.False((await PasswordGrantAsync(victim)).IsError);
    }

    /// <summary>The whole journey in pages: the login page's link, the form, the email, the reset page, a sign-in with the new password.</summary>
    [Fact]
    public async Task ForgotPassword_ThroughThePages()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);

        var login = await browser.OpenAsync("/Account/Login");
        var forgot = await browser.OpenAsync(login.Document!.QuerySelector("a[href='/Account/ForgotPassword']")!.GetAttribute("href")!);
        var sent = await browser.SubmitAsync(forgot, new Dictionary<string, string> { ["Email"] = email });
        var resetPage = await browser.OpenAsync(LinkSentTo(email, "/Account/ResetPassword").PathAndQuery);
        var done = await browser.SubmitAsync(resetPage, new Dictionary<string, string> { ["NewPassword"] = NewPassword });

        Assert.Contains("an email with a link is on its way", sent.Body);
        Assert.Contains("Your password is changed", done.Body);
        Assert.False((await PasswordGrantAsync(email, NewPassword)).IsError);
    }

    [Fact]
    public async Task Registration_EmailsAVerificationLink_ThatVerifiesTheAddressAndJoinsItsOrganization()
    {
        var domain = $"verify-{Guid.NewGuid():N}.example";
        var email = $"founder@{domain}";
        var registered = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password, name = "Founder" });
        var token = registered.Body.GetProperty("access_token").GetString()!;
        var before = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", token);

        var page = await new Browser(Factory).OpenAsync(LinkSentTo(email, "/Account/VerifyEmail").PathAndQuery);
        var after = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", await LoginAsync(email));

        Assert.False(before.Body.GetProperty("user").GetProperty("email_verified").GetBoolean());
        Assert.Contains("Your email address is verified", page.Body);
        Assert.True(after.Body.GetProperty("user").GetProperty("email_verified").GetBoolean());
        // The first verified member of a new organization administers it.
        Assert.Contains("org_admin", after.Body.GetProperty("user").GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }

    [Fact]
    public async Task VerifyEmail_ALinkForAnOldAddress_DoesNotVerifyTheNewOne()
    {
        var email = $"mover-{Guid.NewGuid():N}@example.test";
        var registered = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password });
        var (user, token) = Parts(LinkSentTo(email, "/Account/VerifyEmail"));
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var moved = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{user}", admin, new { email = $"moved-{Guid.NewGuid():N}@example.test" });

        var verify = await ApiAsync(HttpMethod.Post, "/api/v1/auth/verify-email", body: new { user_id = user, token });
        var resend = await ApiAsync(HttpMethod.Post, "/api/v1/auth/verify-email/send", registered.Body.GetProperty("access_token").GetString());
        var movedEmail = moved.Body.GetProperty("user").GetProperty("email").GetString()!;
        var (_, newToken) = Parts(LinkSentTo(movedEmail, "/Account/VerifyEmail"));
        var verifyNew = await ApiAsync(HttpMethod.Post, "/api/v1/auth/verify-email", body: new { user_id = user, token = newToken });

        Assert.Equal(HttpStatusCode.OK, moved.Status);
        Assert.Equal("invalid_token", verify.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.Accepted, resend.Status);
        Assert.Equal(HttpStatusCode.NoContent, verifyNew.Status);
        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{user}", admin);
        Assert.True(read.Body.GetProperty("user").GetProperty("email_verified").GetBoolean());
    }
}

/// <summary>The SMTP sender, against a real SMTP conversation on 127.0.0.1.</summary>
public sealed class SmtpEmailTests
{
    [Fact]
    public async Task ForgotPassword_GoesOutThroughTheSmtpRelay()
    {
        await using var smtp = new SmtpReceiver();
        await using var server = new ServerFactory(DatabaseSettings.Sqlite(), overrides:
        [
            new("Identity:Email:Smtp:Host", "127.0.0.1"), new("Identity:Email:Smtp:Port", smtp.Port.ToString()),
            new("Identity:Email:Smtp:EnableSsl", "false"), new("Identity:Email:From", "accounts@identity.test"),
        ]);
        var http = server.CreateClient();

        var forgot = await http.PostAsJsonAsync("/api/v1/auth/password/forgot", new { email = ServerFactory.AdminEmail });
        for (var waited = 0; smtp.Messages.IsEmpty && waited < 10_000; waited += 100)
            await Task.Delay(100);

        Assert.Equal(HttpStatusCode.Accepted, forgot.StatusCode);
        var message = Assert.Single(smtp.Messages);
        Assert.Equal([ServerFactory.AdminEmail], message.Recipients);
        Assert.Contains("From: accounts@identity.test", message.Data);
        // The body is quoted-printable: soft line breaks and an escaped '='.
        var body = message.Data.Replace("=\n", "").Replace("=3D", "=");
        Assert.Contains("Content-Transfer-Encoding: quoted-printable", message.Data);
        Assert.Contains("/Account/ResetPassword?user=", body);
        Assert.Empty(Directory.GetFiles(server.EmailFolder));
    }
}
