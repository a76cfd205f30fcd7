using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Sessions;

public sealed class SqliteBackchannelLogoutTests(SqliteServer server) : BackchannelLogoutTests<SqliteServer>(server);
public sealed class PostgreSqlBackchannelLogoutTests(PostgreSqlServer server) : BackchannelLogoutTests<PostgreSqlServer>(server);

/// <summary>
/// OpenID Connect Back-Channel Logout: two apps signed in through one browser session; signing out of one signs the
/// user out of both, and each app's back channel receives a logout token it can verify with the JWKS alone.
/// </summary>
public abstract class BackchannelLogoutTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    const string Redirect = "https://apps.example.test/callback";

    /// <summary>A relying party's back channel on 127.0.0.1: keeps every logout_token POSTed to it, by path.</summary>
    sealed class Receiver : IAsyncDisposable
    {
        readonly WebApplication app;
        public ConcurrentQueue<(string Path, string Token)> Tokens { get; } = new();
        public string Url { get; }

        public Receiver()
        {
            (app, Url) = LoopbackServer.Start(web => web.MapPost("/logout/{app}", async (HttpContext http, string app) =>
            {
                var form = await http.Request.ReadFormAsync();
                Tokens.Enqueue((app, form["logout_token"].ToString()));
                return Results.Ok();
            }));
        }

        public async Task<List<(string Path, string Token)>> WaitForAsync(int count)
        {
            for (var waited = 0; Tokens.Count < count && waited < 15_000; waited += 100)
                await Task.Delay(100);
            return [.. Tokens];
        }

        public ValueTask DisposeAsync() => app.DisposeAsync();
    }

    async Task<string> RegisterAsync(string admin, string backchannel)
    {
        var clientId = $"rp-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, consent_type = "implicit", grant_types = new[] { "authorization_code", "refresh_token" },
            redirect_uris = new[] { Redirect }, scopes = new[] { "openid", "profile", "offline_access" }, backchannel_logout_uri = backchannel,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        Assert.Equal(backchannel, created.Body.GetProperty("client").GetProperty("backchannel_logout_uri").GetString());
        return clientId;
    }

    OidcClient Client(string clientId) => OidcClientFor(clientId, Redirect, "openid profile offline_access");

    Task<LoginResult> SignInAsync(Browser browser, string clientId, string? email = null) => SignInThroughAsync(browser, Client(clientId), email);

    async Task<JsonWebToken> ValidateLogoutTokenAsync(string token, string audience)
    {
        var jwks = new JsonWebKeySet(await Http.GetStringAsync("/.well-known/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Issuer, ValidAudience = audience, IssuerSigningKeys = jwks.GetSigningKeys(), ValidTypes = ["logout+jwt"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    /// <summary>Two apps with back channels on <paramref name="receiver"/>, both signed in to by one user in one browser.</summary>
    async Task<(string Admin, Browser Browser, string First, string Second, LoginResult InFirst, LoginResult InSecond)> TwoAppsSignedInAsync(Receiver receiver)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var first = await RegisterAsync(admin, $"{receiver.Url}/logout/first");
        var second = await RegisterAsync(admin, $"{receiver.Url}/logout/second");
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var inFirst = await SignInAsync(browser, first, email);
        var inSecond = await SignInAsync(browser, second);          // the same browser session: no login page
        return (admin, browser, first, second, inFirst, inSecond);
    }

    [Fact]
    public async Task EndSession_SignsOutEveryAppOfTheBrowserSession_AndTellsTheirBackChannels()
    {
        await using var receiver = new Receiver();
        var (_, browser, first, second, inFirst, inSecond) = await TwoAppsSignedInAsync(receiver);

        var signedOut = await browser.OpenAsync($"/connect/endsession?id_token_hint={Uri.EscapeDataString(inFirst.IdentityToken)}");
        var tokens = await receiver.WaitForAsync(2);
        var secondRefresh = await Client(second).RefreshTokenAsync(inSecond.RefreshToken);

        var sid = inFirst.User.FindFirst("sid")?.Value;
        Assert.False(string.IsNullOrEmpty(sid));
        Assert.Equal(sid, inSecond.User.FindFirst("sid")?.Value);
        Assert.Equal(HttpStatusCode.OK, signedOut.Status);
        Assert.Equal(["first", "second"], tokens.Select(t => t.Path).Order());
        foreach (var (path, token) in tokens)
        {
            var jwt = await ValidateLogoutTokenAsync(token, path == "first" ? first : second);
            Assert.Equal(inFirst.User.FindFirst("sub")!.Value, jwt.Subject);
            Assert.Equal(sid, jwt.GetClaim("sid").Value);
            Assert.False(jwt.TryGetClaim("nonce", out _));
            using var events = JsonDocument.Parse(jwt.GetClaim("events").Value);
            Assert.True(events.RootElement.TryGetProperty("http://schemas.openid.net/event/backchannel-logout", out _));
        }
        Assert.True(secondRefresh.IsError);
    }

    [Fact]
    public async Task SessionEndedThroughTheApi_TellsItsAppOnly()
    {
        await using var receiver = new Receiver();
        var (admin, _, first, second, inFirst, inSecond) = await TwoAppsSignedInAsync(receiver);
        var userId = inFirst.User.FindFirst("sub")!.Value;
        var sessions = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{userId}/sessions", admin);
        var firstSession = sessions.Body.GetProperty("sessions").EnumerateArray().Single(s => s.GetProperty("client_id").GetString() == first)
            .GetProperty("id").GetString();

        var ended = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{userId}/sessions/{firstSession}", admin);
        var tokens = await receiver.WaitForAsync(1);
        await Task.Delay(500);

        Assert.Equal(HttpStatusCode.NoContent, ended.Status);
        Assert.Equal("first", Assert.Single(receiver.Tokens).Path);
        Assert.Equal(inFirst.User.FindFirst("sid")!.Value, (await ValidateLogoutTokenAsync(tokens[0].Token, first)).GetClaim("sid").Value);
        Assert.False((await Client(second).RefreshTokenAsync(inSecond.RefreshToken)).IsError);
    }

    [Fact]
    public async Task UserDeleted_EveryAppHears()
    {
        await using var receiver = new Receiver();
        var (admin, _, first, second, inFirst, _) = await TwoAppsSignedInAsync(receiver);
        var userId = inFirst.User.FindFirst("sub")!.Value;

        var deleted = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{userId}", admin);
        var tokens = await receiver.WaitForAsync(2);

        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal(["first", "second"], tokens.Select(t => t.Path).Order());
        foreach (var (path, token) in tokens)
            Assert.Equal(userId, (await ValidateLogoutTokenAsync(token, path == "first" ? first : second)).Subject);
    }

    [Fact]
    public async Task Discovery_AdvertisesBackchannelLogoutWithSessions()
    {
        using var discovery = JsonDocument.Parse(await Http.GetStringAsync("/.well-known/openid-configuration"));

        Assert.True(discovery.RootElement.GetProperty("backchannel_logout_supported").GetBoolean());
        Assert.True(discovery.RootElement.GetProperty("backchannel_logout_session_supported").GetBoolean());
    }
}
