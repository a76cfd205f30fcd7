using System.Globalization;
using System.Net;
using System.Security.Claims;
using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Identity.Server.Users;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Account;

public sealed class SelfDeletionServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Accounts:AllowSelfDeletion", "true")]);

/// <summary>
/// Identity:Accounts:AllowSelfDeletion (Keycloak's "Delete Account"): a user deletes their own account with its
/// password, on the API or the account page; everything it held stops working, and the last administrator stays.
/// </summary>
public sealed class SelfDeletionTests(SelfDeletionServer server) : ServerTests<SelfDeletionServer>(server)
{
    [Fact]
    public async Task Api_DeletesTheAccountWithItsPassword_AndNothingOfItWorksAfter()
    {
        var email = await CreateUserAsync();
        var session = await PasswordGrantAsync(email);
        var token = await LoginAsync(email);
        var userId = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).Subject;

        var wrong = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me", token, new { password = "not the password at all" });
        var stillThere = await PasswordGrantAsync(email);
        var deleted = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me", token, new { password = Password });

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.False(stillThere.IsError);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.True((await PasswordGrantAsync(email)).IsError);
        Assert.Equal("invalid_grant", (await RefreshAsync(session.RefreshToken!)).Error);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", token)).Status);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={userId}&action=user.deleted", admin);
        Assert.Equal("self", audit.Body.GetProperty("entries")[0].GetProperty("details").GetProperty("source").GetString());
    }

    [Fact]
    public async Task Page_DeletesTheAccount_AndSignsTheBrowserOut()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var app = OidcClientFor(ServerFactory.Spa, ServerFactory.SpaRedirect, "openid offline_access");
        var signedIn = await SignInThroughAsync(browser, app, email);

        var page = await browser.OpenAsync("/Account/Delete");
        var deleted = await browser.SubmitAsync(page, new Dictionary<string, string> { ["Password"] = Password });

        Assert.Equal("Your account is deleted. You are signed out everywhere.", deleted.Document!.QuerySelector("[role=status]")!.TextContent.Trim());
        Assert.True((await app.RefreshTokenAsync(signedIn.RefreshToken)).IsError);
        Assert.Equal("/Account/Login", (await browser.OpenAsync((await app.PrepareLoginAsync()).StartUrl)).Url.AbsolutePath);
        Assert.True((await PasswordGrantAsync(email)).IsError);
    }

    /// <summary>
    /// An account without a password (made through a provider) proves it is its user by a recent sign-in instead: one
    /// of an hour ago is not enough, one of a minute ago is.
    /// </summary>
    [Theory]
    [InlineData(60, false)]
    [InlineData(1, true)]
    public async Task WithoutAPassword_ARecentSignInIsNeeded(int minutesAgo, bool deleted)
    {
        await using var scope = Factory.Services.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var users = services.GetRequiredService<UserManager<User>>();
        var user = new User { Email = $"federated-{Guid.NewGuid():N}@example.test", EmailConfirmed = true };
        Assert.True((await Accounts.CreateAsync(users, services.GetRequiredService<IdentityDbContext>(),
            services.GetRequiredService<Identity.Server.Events.SecurityEvents>(), user, password: null, [])).Succeeded);
        var signedIn = DateTimeOffset.UtcNow.AddMinutes(-minutesAgo).ToUnixTimeSeconds();
        var principal = new ClaimsPrincipal(new ClaimsIdentity([new Claim("sub", user.Id), new Claim("auth_time", signedIn.ToString(CultureInfo.InvariantCulture))], "test"));

        var (outcome, _) = await Accounts.DeleteOwnAsync(new DefaultHttpContext { RequestServices = services }, principal, user, password: null);

        Assert.Equal(deleted ? Accounts.SelfDeletionOutcome.Deleted : Accounts.SelfDeletionOutcome.NeedsRecentSignIn, outcome);
        Assert.Equal(deleted, await users.FindByIdAsync(user.Id) is null);
    }

    [Fact]
    public async Task ALockedAccount_IsNotDeleted_EvenWithTheRightPassword()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);
        for (var attempt = 0; attempt < 5; attempt++)
            await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me", token, new { password = "not the password at all" });

        var refused = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me", token, new { password = Password });

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal("account_locked", refused.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", token)).Status);
    }

    [Fact]
    public async Task TheLastAdministrator_CannotDeleteThemselves()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

        var refused = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me", admin, new { password = ServerFactory.AdminPassword });

        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Equal("last_admin", refused.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.False(string.IsNullOrEmpty(await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword)));
    }
}

/// <summary>Off by default, as in Keycloak: accounts are deleted by administrators.</summary>
public sealed class SelfDeletionOffTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    [Fact]
    public async Task TheApiRefuses_AndThereIsNoPage()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);

        var refused = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me", token, new { password = Password });
        var browser = new Browser(Factory);
        await browser.LoginAsync(await browser.OpenAsync("/Account/Login"), email, Password);
        var page = await browser.OpenAsync("/Account/Delete");

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal("self_deletion_disabled", refused.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.NotFound, page.Status);
        Assert.False((await PasswordGrantAsync(email)).IsError);
    }
}
