using System.Net;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Sessions;

/// <summary>Each sign-in is a session: listed with where it came from, ended one by one or all at once.</summary>
public sealed class SessionsTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    async Task<(string Access, string Refresh)> SignInAsync(string email, string userAgent)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login") { Content = System.Net.Http.Json.JsonContent.Create(new { email, password = Password }) };
        request.Headers.UserAgent.ParseAdd(userAgent);
        var body = System.Text.Json.JsonDocument.Parse(await (await Http.SendAsync(request)).Content.ReadAsStringAsync()).RootElement;
        return (body.GetProperty("access_token").GetString()!, body.GetProperty("refresh_token").GetString()!);
    }

    [Fact]
    public async Task Sessions_ListedWithTheCurrentOneMarked()
    {
        var email = await CreateUserAsync();
        var laptop = await SignInAsync(email, "Laptop/1.0");
        await SignInAsync(email, "Phone/2.0");

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/sessions", laptop.Access);

        var sessions = list.Body.GetProperty("sessions").EnumerateArray().ToList();
        Assert.Equal(2, sessions.Count);
        var current = Assert.Single(sessions, s => s.GetProperty("current").GetBoolean());
        Assert.Equal("Laptop/1.0", current.GetProperty("user_agent").GetString());
        Assert.All(sessions, s => Assert.Equal("identity-auth-api", s.GetProperty("client_id").GetString()));
        Assert.All(sessions, s => Assert.NotEqual(System.Text.Json.JsonValueKind.Null, s.GetProperty("last_used_at").ValueKind));
    }

    [Fact]
    public async Task Sessions_EndingOneRevokesItsTokensAtOnce()
    {
        var email = await CreateUserAsync();
        var laptop = await SignInAsync(email, "Laptop/1.0");
        var phone = await SignInAsync(email, "Phone/2.0");
        var phoneId = (await ApiAsync(HttpMethod.Get, "/api/v1/sessions", laptop.Access)).Body.GetProperty("sessions").EnumerateArray()
            .Single(s => !s.GetProperty("current").GetBoolean()).GetProperty("id").GetString();

        var ended = await ApiAsync(HttpMethod.Delete, $"/api/v1/sessions/{phoneId}", laptop.Access);

        Assert.Equal(HttpStatusCode.NoContent, ended.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", phone.Access)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Post, "/api/v1/auth/refresh", body: new { refresh_token = phone.Refresh })).Status);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", laptop.Access)).Status);
        Assert.Single((await ApiAsync(HttpMethod.Get, "/api/v1/sessions", laptop.Access)).Body.GetProperty("sessions").EnumerateArray());
    }

    [Fact]
    public async Task Sessions_EndAllButCurrent_AndOthersSessionsAreNotFound()
    {
        var email = await CreateUserAsync();
        var keep = await SignInAsync(email, "Keep/1.0");
        var dropA = await SignInAsync(email, "A/1.0");
        var dropB = await SignInAsync(email, "B/1.0");
        var stranger = await SignInAsync(await CreateUserAsync(), "Stranger/1.0");
        var strangerSession = (await ApiAsync(HttpMethod.Get, "/api/v1/sessions", stranger.Access)).Body.GetProperty("sessions")[0].GetProperty("id").GetString();

        var notMine = await ApiAsync(HttpMethod.Delete, $"/api/v1/sessions/{strangerSession}", keep.Access);
        var all = await ApiAsync(HttpMethod.Delete, "/api/v1/sessions", keep.Access);

        Assert.Equal("NOT_FOUND", ErrorCode(notMine));
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", stranger.Access)).Status);
        Assert.Equal(2, all.Body.GetProperty("revoked").GetInt32());
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", dropA.Access)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", dropB.Access)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", keep.Access)).Status);
    }

    [Fact]
    public async Task Sessions_AdminListsAndEndsAUsersSessions_Audited()
    {
        var email = await CreateUserAsync();
        var user = await SignInAsync(email, "Victim/1.0");
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var id = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(email)}", admin)).Body.GetProperty("users")[0].GetProperty("id").GetString();

        var listed = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}/sessions", admin);
        var ended = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/sessions", admin);
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}&action=session.expired", admin);
        var asUser = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}/sessions", user.Access);

        Assert.Single(listed.Body.GetProperty("sessions").EnumerateArray());
        Assert.Equal(1, ended.Body.GetProperty("revoked").GetInt32());
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", user.Access)).Status);
        Assert.Equal(1, audit.Body.GetProperty("total").GetInt32());
        Assert.Equal("revoked", audit.Body.GetProperty("entries")[0].GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, asUser.Status);
    }
}
