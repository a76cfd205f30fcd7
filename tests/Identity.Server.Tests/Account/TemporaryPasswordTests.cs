using System.Net;
using Duende.IdentityModel.Client;
using Identity.Server.Account;
using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Account;

/// <summary>
/// Temporary passwords (Keycloak's "Temporary" password and its "Update Password" required action): an administrator
/// sets one, and the next password sign-in must choose the user's own on the login page before it goes on to the app.
/// </summary>
public sealed class TemporaryPasswordTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    const string Temporary = "temporary passphrase from IT";
    const string Own = "my very own passphrase";

    async Task<(string Admin, string Id, string Email)> NewUserWithTemporaryPasswordAsync()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var email = $"newhire-{Guid.NewGuid():N}@example.test";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email, password = Temporary, email_verified = true, temporary_password = true });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.True(created.Body.GetProperty("user").GetProperty("password_change_required").GetBoolean());
        return (admin, created.Body.GetProperty("user").GetProperty("id").GetString()!, email);
    }

    static string? Alert(Browser.Page page) => page.Document!.QuerySelector("[role=alert]")?.TextContent.Trim();

    [Fact]
    public async Task TheTemporaryPassword_OpensOnlyTheLoginPage_WhichHasTheUserChooseTheirOwn_ThenGoesOnToTheApp()
    {
        var (admin, id, email) = await NewUserWithTemporaryPasswordAsync();

        var grant = await PasswordGrantAsync(email, Temporary);
        var apiLogin = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Temporary });
        var browser = new Browser(Factory);
        var change = await browser.LoginAsync(await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect)), email, Temporary);
        var mismatch = await browser.SubmitAsync(change, new Dictionary<string, string> { ["NewPassword"] = Own, ["ConfirmPassword"] = Own + "!" });
        var same = await browser.SubmitAsync(mismatch, new Dictionary<string, string> { ["NewPassword"] = Temporary, ["ConfirmPassword"] = Temporary });
        var shortOne = await browser.SubmitAsync(same, new Dictionary<string, string> { ["NewPassword"] = "short", ["ConfirmPassword"] = "short" });
        var back = await browser.SubmitAsync(shortOne, new Dictionary<string, string> { ["NewPassword"] = Own, ["ConfirmPassword"] = Own });

        Assert.Equal("invalid_grant", grant.Error);
        Assert.Equal("password_change_required", grant.Json!.Value.GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, apiLogin.Status);
        Assert.Equal("password_change_required", apiLogin.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.NotNull(change.Document!.QuerySelector("input[name=PasswordChangePass]"));
        Assert.Null(change.Document!.QuerySelector("input[name=Password]"));
        Assert.Equal("Enter the new password twice, the same both times.", Alert(mismatch));
        Assert.Equal("Choose a password of your own, not the temporary one.", Alert(same));
        Assert.Contains("at least 12", Alert(shortOne));
        Assert.True(QueryHelpers.ParseQuery(back.LeftTo!.Query).ContainsKey("code"), back.Body);
        Assert.True((await PasswordGrantAsync(email, Temporary)).IsError);
        Assert.False((await PasswordGrantAsync(email, Own)).IsError);
        var user = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin);
        Assert.False(user.Body.GetProperty("user").GetProperty("password_change_required").GetBoolean());
    }

    [Fact]
    public async Task ThePassOfTheChangeForm_CannotBeForged_NorOutliveThePasswordItWasFor()
    {
        var (_, id, email) = await NewUserWithTemporaryPasswordAsync();
        var browser = new Browser(Factory);
        var change = await browser.LoginAsync(await browser.OpenAsync("/Account/Login"), email, Temporary);
        var pass = change.Document!.QuerySelector("input[name=PasswordChangePass]")!.GetAttribute("value")!;

        var forged = await browser.SubmitAsync(change, new Dictionary<string, string>
        {
            ["PasswordChangePass"] = pass[..^4] + (pass[^4] == 'A' ? 'B' : 'A') + pass[^3..], ["NewPassword"] = Own, ["ConfirmPassword"] = Own,
        });
        await using var scope = Factory.Services.CreateAsyncScope();
        var protection = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var valid = await TemporaryPassword.RedeemAsync(protection, users, pass);
        var used = await browser.SubmitAsync(change, new Dictionary<string, string> { ["NewPassword"] = Own, ["ConfirmPassword"] = Own });
        // A new request's view of the account, as the server has at each request.
        await using var later = Factory.Services.CreateAsyncScope();
        var afterwards = await TemporaryPassword.RedeemAsync(protection, later.ServiceProvider.GetRequiredService<UserManager<User>>(), pass);

        Assert.Equal("That took too long, or the password was changed already. Sign in again.", Alert(forged));
        Assert.Equal(id, valid?.Id);
        Assert.Equal("/", used.Url.AbsolutePath);
        Assert.Null(afterwards);
        Assert.False((await PasswordGrantAsync(email, Own)).IsError);
    }

    /// <summary>A password the user sets another way (here a reset link) is final too.</summary>
    [Fact]
    public async Task AResetByEmail_EndsTheTemporaryPassword()
    {
        var (admin, id, email) = await NewUserWithTemporaryPasswordAsync();

        await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email });
        var mail = Directory.GetFiles(Factory.EmailFolder).Select(File.ReadAllText).Single(m => m.StartsWith($"To: {email}\n", StringComparison.Ordinal));
        var link = new Uri(System.Text.RegularExpressions.Regex.Match(mail, @"https?://\S+/Account/ResetPassword\S+").Value);
        var query = QueryHelpers.ParseQuery(link.Query);
        var reset = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/reset", body: new { user_id = query["user"].ToString(), token = query["token"].ToString(), new_password = Own });

        Assert.Equal(HttpStatusCode.NoContent, reset.Status);
        Assert.False((await PasswordGrantAsync(email, Own)).IsError);
        Assert.False((await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin)).Body.GetProperty("user").GetProperty("password_change_required").GetBoolean());
    }

    [Fact]
    public async Task AnAdministrator_MakesAPasswordTemporary_OrSetsAFinalOne()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var email = await CreateUserAsync();
        var id = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken((await PasswordGrantAsync(email)).AccessToken).Subject;

        var temporary = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { temporary_password = true });
        var refused = await PasswordGrantAsync(email);
        var reset = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { password = Own });

        Assert.True(temporary.Body.GetProperty("user").GetProperty("password_change_required").GetBoolean());
        Assert.Equal("password_change_required", refused.Json!.Value.GetProperty("reason").GetString());
        Assert.False(reset.Body.GetProperty("user").GetProperty("password_change_required").GetBoolean());
        Assert.False((await PasswordGrantAsync(email, Own)).IsError);
    }
}
