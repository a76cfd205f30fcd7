using System.Net;
using System.Text;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;

namespace Identity.Server.Tests.Hosting;

public sealed class RateLimitedServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:RateLimiting:Enabled", "true"),
    new("Identity:RateLimiting:Authentication:PermitLimit", "3"),
    new("Identity:RateLimiting:Standard:PermitLimit", "4"),
    new("Identity:RateLimiting:Bulk:PermitLimit", "2"),
]);

/// <summary>The seed's limits, with small numbers: per IP for authentication, per IP and per user for the APIs.</summary>
public sealed class RateLimitTests(RateLimitedServer server) : ServerTests<RateLimitedServer>(server)
{
    static int lastAddress;

    /// <summary>Each test speaks from addresses of its own, so their counters do not mix.</summary>
    static IPAddress NewAddress() => IPAddress.Parse($"198.51.100.{Interlocked.Increment(ref lastAddress)}");

    async Task<HttpContext> SendAsync(IPAddress from, string method, string path, string? token = null, string? json = null) =>
        await Factory.Server.SendAsync(http =>
        {
            http.Connection.RemoteIpAddress = from;
            http.Request.Method = method;
            http.Request.Path = path;
            if (token is not null)
                http.Request.Headers.Authorization = "Bearer " + token;
            if (json is not null)
            {
                http.Request.ContentType = "application/json";
                http.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(json));
            }
        });

    static string Body(HttpContext http) => new StreamReader(http.Response.Body).ReadToEnd();

    [Fact]
    public async Task Authentication_LimitedPerIp_With429AndHeaders()
    {
        var from = NewAddress();
        var login = JsonSerializer.Serialize(new { email = "nobody@example.test", password = "not the password at all" });

        var answers = new List<HttpContext>();
        for (var i = 0; i < 4; i++)
            answers.Add(await SendAsync(from, "POST", "/api/v1/auth/login", json: login));
        var elsewhere = await SendAsync(NewAddress(), "POST", "/api/v1/auth/login", json: login);

        Assert.All(answers.Take(3), a => Assert.Equal(StatusCodes.Status401Unauthorized, a.Response.StatusCode));
        Assert.Equal(["2", "1", "0"], answers.Take(3).Select(a => a.Response.Headers["X-RateLimit-Remaining"].ToString()));
        Assert.All(answers, a => Assert.Equal("3", a.Response.Headers["X-RateLimit-Limit"].ToString()));
        var limited = answers[3];
        Assert.Equal(StatusCodes.Status429TooManyRequests, limited.Response.StatusCode);
        Assert.InRange(int.Parse(limited.Response.Headers.RetryAfter.ToString()), 1, 60);
        Assert.True(long.Parse(limited.Response.Headers["X-RateLimit-Reset"].ToString()) > DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        using var error = JsonDocument.Parse(Body(limited));
        Assert.Equal("RATE_LIMITED", error.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(StatusCodes.Status401Unauthorized, elsewhere.Response.StatusCode);
    }

    /// <summary>
    /// The auth API's client has no secret; at /connect/token it would let anyone guess passwords around the limits of
    /// /api/v1/auth. It is refused there, before any password is checked.
    /// </summary>
    [Fact]
    public async Task AuthApiClient_IsRefusedAtTheTokenEndpoint()
    {
        var email = await CreateUserAsync();

        var answer = await Http.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "identity-auth-api", ["username"] = email, ["password"] = Password,
        }));

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        using var error = JsonDocument.Parse(await answer.Content.ReadAsStringAsync());
        Assert.Equal("unauthorized_client", error.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Api_LimitedPerUserAcrossAddresses()
    {
        var token = (await PasswordGrantAsync(await CreateUserAsync())).AccessToken!;
        var other = (await PasswordGrantAsync(await CreateUserAsync())).AccessToken!;

        var first = NewAddress();
        for (var i = 0; i < 4; i++)
            Assert.Equal(StatusCodes.Status200OK, (await SendAsync(first, "GET", "/api/v1/auth/me", token)).Response.StatusCode);
        var sameUserNewAddress = await SendAsync(NewAddress(), "GET", "/api/v1/auth/me", token);
        var otherUserNewAddress = await SendAsync(NewAddress(), "GET", "/api/v1/auth/me", other);

        Assert.Equal(StatusCodes.Status429TooManyRequests, sameUserNewAddress.Response.StatusCode);
        Assert.Equal(StatusCodes.Status200OK, otherUserNewAddress.Response.StatusCode);
    }

    [Fact]
    public async Task EndingAllSessions_IsABulkOperation_WithItsOwnTighterLimit()
    {
        var token = (await PasswordGrantAsync(await CreateUserAsync())).AccessToken!;
        var from = NewAddress();

        var answers = new List<HttpContext>();
        for (var i = 0; i < 3; i++)
            answers.Add(await SendAsync(from, "DELETE", "/api/v1/sessions", token));
        var oneSession = await SendAsync(from, "DELETE", "/api/v1/sessions/no-such-session", token);
        var standard = await SendAsync(from, "GET", "/api/v1/auth/me", token);

        Assert.All(answers.Take(2), a => Assert.Equal(StatusCodes.Status200OK, a.Response.StatusCode));
        Assert.All(answers, a => Assert.Equal("2", a.Response.Headers["X-RateLimit-Limit"].ToString()));
        Assert.Equal(StatusCodes.Status429TooManyRequests, answers[2].Response.StatusCode);
        Assert.Equal(StatusCodes.Status404NotFound, oneSession.Response.StatusCode);
        Assert.Equal("4", oneSession.Response.Headers["X-RateLimit-Limit"].ToString());
        Assert.Equal(StatusCodes.Status200OK, standard.Response.StatusCode);
    }

    [Fact]
    public async Task Api_LimitedPerAddressWithoutToken()
    {
        var from = NewAddress();
        for (var i = 0; i < 4; i++)
            Assert.Equal(StatusCodes.Status401Unauthorized, (await SendAsync(from, "GET", "/api/v1/users")).Response.StatusCode);

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await SendAsync(from, "GET", "/api/v1/users")).Response.StatusCode);
    }

    [Fact]
    public async Task Health_IsNeverLimited()
    {
        var from = NewAddress();
        for (var i = 0; i < 10; i++)
        {
            var answer = await SendAsync(from, "GET", "/health");
            Assert.Equal(StatusCodes.Status200OK, answer.Response.StatusCode);
            Assert.False(answer.Response.Headers.ContainsKey("X-RateLimit-Limit"));
        }
    }
}
