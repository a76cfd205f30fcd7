using System.Net;
using System.Text;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;

namespace Identity.Server.Tests.Hosting;

public sealed class FailedSignInServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:RateLimiting:Enabled", "true"),
    new("Identity:RateLimiting:FailedSignIns:PermitLimit", "3"),
]);

/// <summary>
/// Password spraying: one network trying a password on many accounts, once each, which account lockout never sees.
/// Failed sign-ins are counted per network across the login page, the password grant and the auth API.
/// </summary>
public sealed class FailedSignInTests(FailedSignInServer server) : ServerTests<FailedSignInServer>(server)
{
    static int lastAddress;

    static IPAddress NewAddress() => IPAddress.Parse($"203.0.113.{Interlocked.Increment(ref lastAddress)}");

    Task<HttpContext> SendAsync(IPAddress from, string path, string contentType, string body) =>
        Factory.Server.SendAsync(http =>
        {
            http.Connection.RemoteIpAddress = from;
            http.Request.Method = "POST";
            http.Request.Path = path;
            http.Request.ContentType = contentType;
            http.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(body));
        });

    Task<HttpContext> PasswordGrantFromAsync(IPAddress from, string email, string password) =>
        SendAsync(from, "/connect/token", "application/x-www-form-urlencoded", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = ServerFactory.Web, ["client_secret"] = ServerFactory.WebSecret,
            ["username"] = email, ["password"] = password,
        }).ReadAsStringAsync().Result);

    static JsonElement Json(HttpContext http) => JsonDocument.Parse(new StreamReader(http.Response.Body).ReadToEnd()).RootElement;

    /// <summary>Three accounts, one wrong password each, as a sprayer tries them.</summary>
    async Task SprayAsync(IPAddress from)
    {
        for (var i = 0; i < 3; i++)
            Assert.Equal(StatusCodes.Status400BadRequest, (await PasswordGrantFromAsync(from, await CreateUserAsync(), "Winter2026!Winter2026!")).Response.StatusCode);
    }

    [Fact]
    public async Task PasswordGrant_AfterTheNetworksFailures_RefusesEvenTheRightPassword_OtherNetworksSignIn()
    {
        var sprayer = NewAddress();
        var victim = await CreateUserAsync();
        await SprayAsync(sprayer);

        var refused = await PasswordGrantFromAsync(sprayer, victim, Password);
        var elsewhere = await PasswordGrantFromAsync(NewAddress(), victim, Password);

        Assert.Equal(StatusCodes.Status400BadRequest, refused.Response.StatusCode);
        var error = Json(refused);
        Assert.Equal("invalid_grant", error.GetProperty("error").GetString());
        Assert.Equal("too_many_attempts", error.GetProperty("reason").GetString());
        Assert.False(error.TryGetProperty("access_token", out _));
        Assert.InRange(int.Parse(refused.Response.Headers.RetryAfter.ToString()), 1, 15 * 60);
        Assert.Equal(StatusCodes.Status200OK, elsewhere.Response.StatusCode);
        // Spraying is not the victim's fault: the account itself is not locked.
        Assert.Equal(StatusCodes.Status200OK, (await PasswordGrantFromAsync(NewAddress(), victim, Password)).Response.StatusCode);
    }

    [Fact]
    public async Task Ipv6_TheWhole64CountsAsOneNetwork()
    {
        var victim = await CreateUserAsync();
        for (var i = 1; i <= 3; i++)
            await PasswordGrantFromAsync(IPAddress.Parse($"2001:db8:aa:bb::{i}"), await CreateUserAsync(), "Winter2026!Winter2026!");

        var sameNetwork = await PasswordGrantFromAsync(IPAddress.Parse("2001:db8:aa:bb:ffff:1:2:3"), victim, Password);
        var nextNetwork = await PasswordGrantFromAsync(IPAddress.Parse("2001:db8:aa:bc::1"), victim, Password);

        Assert.Equal("too_many_attempts", Json(sameNetwork).GetProperty("reason").GetString());
        Assert.Equal(StatusCodes.Status200OK, nextNetwork.Response.StatusCode);
    }

    [Fact]
    public async Task AuthApi_CountsTheSameFailures_AndAnswers429()
    {
        var sprayer = NewAddress();
        var victim = await CreateUserAsync();
        await SprayAsync(sprayer);

        var refused = await SendAsync(sprayer, "/api/v1/auth/login", "application/json", JsonSerializer.Serialize(new { email = victim, password = Password }));

        Assert.Equal(StatusCodes.Status429TooManyRequests, refused.Response.StatusCode);
        var error = Json(refused).GetProperty("error");
        Assert.Equal("RATE_LIMITED", error.GetProperty("code").GetString());
        Assert.Equal("too_many_failed_sign_ins", error.GetProperty("details").GetProperty("reason").GetString());
        Assert.InRange(int.Parse(refused.Response.Headers.RetryAfter.ToString()), 1, 15 * 60);
    }

    /// <summary>The only test here whose requests come from the in-memory client's address.</summary>
    [Fact]
    public async Task LoginPage_AfterTheNetworksFailures_SaysSoAndSignsNobodyIn()
    {
        var browser = new Browser(Factory);
        var victim = await CreateUserAsync();
        for (var i = 0; i < 3; i++)
        {
            var wrong = await browser.LoginAsync(await browser.OpenAsync("/Account/Login"), await CreateUserAsync(), "Winter2026!Winter2026!");
            Assert.Contains("Invalid email or password.", wrong.Body);
        }

        var refused = await browser.LoginAsync(await browser.OpenAsync("/Account/Login"), victim, Password);

        Assert.Contains("Too many failed sign-ins from your network", refused.Body);
        Assert.Null(refused.LeftTo);
        Assert.Contains("You are not signed in.", (await browser.OpenAsync("/")).Body);
    }
}
