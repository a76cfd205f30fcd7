using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Connect;

/// <summary>A server whose sign-ins last three seconds at most, however their refresh tokens are used.</summary>
public sealed class ShortSignInServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Tokens:RefreshTokenAbsoluteLifetime", "00:00:03")]);

/// <summary>
/// Identity:Tokens:RefreshTokenAbsoluteLifetime (Keycloak's SSO Session Max, Duende's absolute refresh token lifetime):
/// a sign-in ends that long after the user authenticated, through refresh tokens and the browser session alike.
/// </summary>
public sealed class SessionMaxLifetimeTests(ShortSignInServer server) : ServerTests<ShortSignInServer>(server)
{
    static readonly TimeSpan Maximum = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Waits until a sign-in made by <paramref name="authenticated"/> (taken once the sign-in has answered, so no later
    /// than its auth_time, which has whole seconds) is over: a slow sign-in on a busy machine must not leave it running.
    /// </summary>
    static Task OutlastAsync(DateTimeOffset authenticated) =>
        Task.Delay(authenticated + Maximum + TimeSpan.FromSeconds(1.1) - DateTimeOffset.UtcNow is { Ticks: > 0 } wait ? wait : TimeSpan.Zero);

    [Fact]
    public async Task RefreshTokens_StopAtTheSignInsEnd_ThoughEachRefreshWouldSlideTheirLifetime()
    {
        var email = await CreateUserAsync();
        var first = await PasswordGrantAsync(email);
        var authenticated = DateTimeOffset.UtcNow;
        var refreshed = await RefreshAsync(first.RefreshToken!);

        // Not the 14 days a refresh token lasts from each use, but what is left of the sign-in.
        Assert.False(refreshed.IsError, refreshed.Error);
        Assert.True(await RefreshTokenLifetimeAsync(first.RefreshToken!) <= Maximum);
        Assert.True(await RefreshTokenLifetimeAsync(refreshed.RefreshToken!) <= Maximum);

        await OutlastAsync(authenticated);
        var over = await RefreshAsync(refreshed.RefreshToken!);

        Assert.Equal("invalid_grant", over.Error);
        // The user signs in again, and gets a new sign-in of full length.
        var again = await PasswordGrantAsync(email);
        Assert.False((await RefreshAsync(again.RefreshToken!)).IsError);
    }

    [Fact]
    public async Task ABrowserSessionOlderThanASignInMayLast_LogsInAgain_AndPromptNoneSaysLoginRequired()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var back = await browser.LoginAsync(await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect)), email, Password);
        var authenticated = DateTimeOffset.UtcNow;
        Assert.True(QueryHelpers.ParseQuery(back.LeftTo!.Query).ContainsKey("code"));
        var silent = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, ("prompt", "none")));
        Assert.True(QueryHelpers.ParseQuery(silent.LeftTo!.Query).ContainsKey("code"));

        await OutlastAsync(authenticated);
        var silentLater = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, ("prompt", "none")));
        var later = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect));

        Assert.Equal("login_required", QueryHelpers.ParseQuery(silentLater.LeftTo!.Query)["error"]);
        Assert.Equal("/Account/Login", later.Url.AbsolutePath);
    }

    /// <summary>The sessions API says when a sign-in ends, and stops listing it once it has.</summary>
    [Fact]
    public async Task TheSessionsList_EndsASignInAtItsMaximum()
    {
        var email = await CreateUserAsync();
        var signingIn = DateTimeOffset.UtcNow;
        var token = await LoginAsync(email);
        var authenticated = DateTimeOffset.UtcNow;

        var (_, listed, _) = await ApiAsync(HttpMethod.Get, "/api/v1/sessions", token);
        var session = Assert.Single(listed.GetProperty("sessions").EnumerateArray());
        var expires = session.GetProperty("expires_at").GetDateTimeOffset();
        await OutlastAsync(authenticated);
        var (status, later, _) = await ApiAsync(HttpMethod.Get, "/api/v1/sessions", token);

        Assert.InRange(expires, signingIn - TimeSpan.FromSeconds(1), authenticated + Maximum + TimeSpan.FromSeconds(1));
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Empty(later.GetProperty("sessions").EnumerateArray());
    }

    /// <summary>A shorter maximum set later ends the sign-ins it already covers, not only those that follow.</summary>
    [Fact]
    public async Task AShorterMaximumSetLater_EndsTheSignInsMadeBefore()
    {
        var (database, keys) = (DatabaseSettings.Sqlite(), Directory.CreateTempSubdirectory("identity-keys-").FullName);
        string refreshToken;
        DateTimeOffset authenticated;
        await using (var before = new ServerFactory(database, keys))
        {
            using var http = before.CreateClient();
            var email = await RegisterAsync(http);
            refreshToken = (await http.RequestPasswordTokenAsync(new PasswordTokenRequest
            {
                Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, UserName = email, Password = Password,
                Scope = "openid offline_access",
            })).RefreshToken!;
            authenticated = DateTimeOffset.UtcNow;
        }
        await using var after = new ServerFactory(database, keys, [new("Identity:Tokens:RefreshTokenAbsoluteLifetime", "00:00:03")]);
        using var client = after.CreateClient();

        await OutlastAsync(authenticated);
        var refused = await client.RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, RefreshToken = refreshToken,
        });

        Assert.Equal("invalid_grant", refused.Error);
        Assert.Contains("sign in again", refused.ErrorDescription);
        database.Drop();
        Directory.Delete(keys, recursive: true);
    }

    static async Task<string> RegisterAsync(HttpClient http)
    {
        var email = $"max-{Guid.NewGuid():N}@example.test";
        var registered = await http.PostAsync("/api/v1/auth/register", System.Net.Http.Json.JsonContent.Create(new { email, password = Password, name = "Max" }));
        Assert.True(registered.IsSuccessStatusCode, await registered.Content.ReadAsStringAsync());
        return email;
    }
}
