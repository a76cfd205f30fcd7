using System.Net;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Auth;

public sealed class SqliteAuthApiTests(SqliteServer server) : AuthApiTests<SqliteServer>(server);
public sealed class PostgreSqlAuthApiTests(PostgreSqlServer server) : AuthApiTests<PostgreSqlServer>(server);

/// <summary>The seed's /api/v1/auth/* as its quick start uses it, and what it must refuse.</summary>
public abstract class AuthApiTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    static string NewEmail(string domain = "example.test") => $"new-{Guid.NewGuid():N}@{domain}";

    Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, object body) =>
        ApiAsync(HttpMethod.Post, path, body: body);

    [Fact]
    public async Task Login_RememberMe_DecidesHowLongTheRefreshTokensLast_AcrossRefreshes()
    {
        var email = await CreateUserAsync();
        static void AssertAbout(TimeSpan expected, TimeSpan actual) => Assert.InRange(actual, expected - TimeSpan.FromMinutes(1), expected + TimeSpan.FromMinutes(1));
        string refreshToken = "";
        async Task<string> SignInAsync(object body) => refreshToken = (await PostAsync("/api/v1/auth/login", body)).Body.GetProperty("refresh_token").GetString()!;
        async Task<string> RefreshAsync()
        {
            var renewed = await PostAsync("/api/v1/auth/refresh", new { refresh_token = refreshToken });
            Assert.Equal(HttpStatusCode.OK, renewed.Status);
            return refreshToken = renewed.Body.GetProperty("refresh_token").GetString()!;
        }

        AssertAbout(TimeSpan.FromDays(1), await RefreshTokenLifetimeAsync(await SignInAsync(new { email, password = Password })));
        AssertAbout(TimeSpan.FromDays(1), await RefreshTokenLifetimeAsync(await RefreshAsync()));
        AssertAbout(TimeSpan.FromDays(14), await RefreshTokenLifetimeAsync(await SignInAsync(new { email, password = Password, remember_me = true })));
        AssertAbout(TimeSpan.FromDays(14), await RefreshTokenLifetimeAsync(await RefreshAsync()));

        var malformed = await PostAsync("/api/v1/auth/login", new { email, password = Password, remember_me = "yes" });
        Assert.Equal(HttpStatusCode.BadRequest, malformed.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(malformed));
    }

    [Fact]
    public async Task Register_ReturnsTokensAndUserAtOnce_AsInTheQuickStart()
    {
        var email = NewEmail();

        var (status, body, _) = await PostAsync("/api/v1/auth/register", new { email, password = "SecurePass123!", name = "Test User" });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Bearer", body.GetProperty("token_type").GetString());
        Assert.InRange(body.GetProperty("expires_in").GetInt32(), 3500, 3600);
        Assert.False(string.IsNullOrEmpty(body.GetProperty("refresh_token").GetString()));
        var user = body.GetProperty("user");
        Assert.Equal(email, user.GetProperty("email").GetString());
        Assert.Equal("Test User", user.GetProperty("name").GetString());
        Assert.Equal(["user"], user.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.False(string.IsNullOrEmpty(user.GetProperty("id").GetString()));

        // The same kind of token as /connect/token's: verified with the JWKS, valid at userinfo and the API.
        var token = body.GetProperty("access_token").GetString()!;
        var jwt = await ValidateJwtAsync(token, "identity");
        Assert.Equal(user.GetProperty("id").GetString(), jwt.Subject);
        Assert.Equal("identity-auth-api", jwt.GetClaim("client_id").Value);
        Assert.Equal("pwd", jwt.GetPayloadValue<string[]>("amr").Single());
        var userInfo = await Http.GetUserInfoAsync(new UserInfoRequest { Address = "/connect/userinfo", Token = token });
        Assert.False(userInfo.IsError, userInfo.Error);
        Assert.Equal(email, userInfo.Claims.First(c => c.Type == "email").Value);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", token)).Status);
    }

    [Fact]
    public async Task Register_DuplicateEmail_Is409Conflict_WhateverTheCase()
    {
        var email = NewEmail();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync("/api/v1/auth/register", new { email, password = Password })).Status);

        var again = await PostAsync("/api/v1/auth/register", new { email = email.ToUpperInvariant(), password = Password });

        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        Assert.Equal("CONFLICT", ErrorCode(again));
    }

    [Theory]
    [InlineData("short1!", "PasswordTooShort")]
    [InlineData("password1234", "CommonPassword")]
    [InlineData("Qwerty123456", "CommonPassword")]
    [InlineData("aaaaaaaaaaaaaaaa", "CommonPassword")]
    public async Task Register_WeakPassword_Is400NamingTheRule_AndStoresNothing(string password, string rule)
    {
        var email = NewEmail();

        var answer = await PostAsync("/api/v1/auth/register", new { email, password });

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        var details = answer.Body.GetProperty("error").GetProperty("details");
        Assert.Equal("password", details.GetProperty("field").GetString());
        Assert.Equal(rule, details.GetProperty("rule").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync("/api/v1/auth/login", new { email, password })).Status);
    }

    [Theory]
    [InlineData("{\"email\":\"not-an-email\",\"password\":\"a long enough passphrase\"}")]
    [InlineData("{\"email\":\"a@example.test\"}")]
    [InlineData("{\"email\":42,\"password\":\"a long enough passphrase\"}")]
    [InlineData("[1,2,3]")]
    [InlineData("{not json")]
    [InlineData("")]
    [InlineData("{\"email\":\"a@example.test\",\"password\":\"a long enough passphrase\",\"name\":\"\\ud800\"}")]
    public async Task Register_BadBody_Is400InvalidRequest(string json)
    {
        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new StringContent(json, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
    }

    /// <summary>With no external provider configured (the default), their addresses do not exist: 404, not a 500.</summary>
    [Fact]
    public async Task ExternalSignIn_WithoutProviders_IsNotFound()
    {
        var callback = await ApiAsync(HttpMethod.Post, "/api/v1/auth/oauth/google/callback", body: new { code = "c", state = "s", code_verifier = new string('v', 43) });
        var browserCallback = await Http.GetAsync("/signin/google?code=c&state=s");

        Assert.Equal("NOT_FOUND", ErrorCode(callback));
        Assert.Equal(HttpStatusCode.NotFound, browserCallback.StatusCode);
    }

    [Fact]
    public async Task Login_FormInsteadOfJsonOrOversizedBody_Is4xx()
    {
        var form = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new FormUrlEncodedContent([new("email", "a@example.test"), new("password", "x")]));
        var huge = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email = "a@example.test", password = new string('x', 100_000) });

        Assert.Equal(HttpStatusCode.BadRequest, form.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(form));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(huge));
    }

    [Fact]
    public async Task Login_ReturnsTokensAndUserWithPermissions()
    {
        var email = await CreateUserAsync();
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);

        var (status, body, _) = await PostAsync("/api/v1/auth/login", new { email, password = Password, remember_me = true });

        Assert.Equal(HttpStatusCode.OK, status);
        var user = body.GetProperty("user");
        // This login, not the one before it.
        Assert.True(user.GetProperty("last_login").GetDateTimeOffset() >= before, user.GetProperty("last_login").ToString());
        Assert.Contains("read:profile", user.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal(["user"], user.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.False(string.IsNullOrEmpty(body.GetProperty("refresh_token").GetString()));
    }

    [Fact]
    public async Task Login_ManyAtOnceForOneAccount_AllSucceed_AndTheirRefreshesToo()
    {
        var email = await CreateUserAsync();

        var logins = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => PostAsync("/api/v1/auth/login", new { email, password = Password })));
        var refreshes = await Task.WhenAll(logins.Select(l => PostAsync("/api/v1/auth/refresh", new { refresh_token = l.Body.GetProperty("refresh_token").GetString() })));

        Assert.All(logins, l => Assert.Equal(HttpStatusCode.OK, l.Status));
        Assert.All(refreshes, r => Assert.Equal(HttpStatusCode.OK, r.Status));
    }

    [Fact]
    public async Task Login_WrongPasswordAndUnknownEmail_AnswerTheSame401()
    {
        var email = await CreateUserAsync();

        var wrong = await PostAsync("/api/v1/auth/login", new { email, password = "not the password at all" });
        var unknown = await PostAsync("/api/v1/auth/login", new { email = "nobody-" + email, password = "not the password at all" });

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.Status);
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(wrong));
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(unknown));
        Assert.Equal(wrong.Body.GetProperty("error").GetProperty("message").GetString(), unknown.Body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Login_LockedAccount_SaysSoOnlyToTheRightPassword()
    {
        var email = await CreateUserAsync();
        for (var i = 0; i < 5; i++)
            await PostAsync("/api/v1/auth/login", new { email, password = "wrong password " + i });

        var wrong = await PostAsync("/api/v1/auth/login", new { email, password = "still the wrong password" });
        var right = await PostAsync("/api/v1/auth/login", new { email, password = Password });

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(wrong));
        Assert.Equal(HttpStatusCode.Forbidden, right.Status);
        Assert.Equal("account_locked", right.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.False(right.Body.TryGetProperty("access_token", out _));
    }

    [Fact]
    public async Task Refresh_RotatesAndReuseRevokesTheChain()
    {
        var email = await CreateUserAsync();
        var login = (await PostAsync("/api/v1/auth/login", new { email, password = Password })).Body;
        var first = login.GetProperty("refresh_token").GetString();

        var refreshed = await PostAsync("/api/v1/auth/refresh", new { refresh_token = first });
        var second = refreshed.Body.GetProperty("refresh_token").GetString();
        var replay = await PostAsync("/api/v1/auth/refresh", new { refresh_token = first });

        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
        Assert.NotEqual(first, second);
        Assert.Equal(email, refreshed.Body.GetProperty("user").GetProperty("email").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, replay.Status);
        Assert.Equal("UNAUTHORIZED", ErrorCode(replay));
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync("/api/v1/auth/refresh", new { refresh_token = second })).Status);
        var access = refreshed.Body.GetProperty("access_token").GetString();
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", access)).Status);

        // The theft is on record for the admins.
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var userId = login.GetProperty("user").GetProperty("id").GetString();
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={userId}&action=token.reuse_detected", admin);
        Assert.True(audit.Body.GetProperty("total").GetInt32() >= 1, audit.Body.ToString());
    }

    [Fact]
    public async Task Refresh_GarbageToken_Is401()
    {
        var answer = await PostAsync("/api/v1/auth/refresh", new { refresh_token = "rt_not_a_real_token" });

        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.Equal("UNAUTHORIZED", ErrorCode(answer));
    }

    [Fact]
    public async Task Logout_RevokesTheRefreshTokenAndItsSession()
    {
        var email = await CreateUserAsync();
        var login = (await PostAsync("/api/v1/auth/login", new { email, password = Password })).Body;
        var refresh = login.GetProperty("refresh_token").GetString();
        var access = login.GetProperty("access_token").GetString();

        var logout = await PostAsync("/api/v1/auth/logout", new { refresh_token = refresh });

        Assert.Equal(HttpStatusCode.NoContent, logout.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync("/api/v1/auth/refresh", new { refresh_token = refresh })).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", access)).Status);
    }

    [Fact]
    public async Task ChangePassword_WithTheCurrentOne_NewWorksOldNot_OtherSessionsEnd()
    {
        var email = await CreateUserAsync();
        var here = (await PostAsync("/api/v1/auth/login", new { email, password = Password })).Body;
        var elsewhere = (await PostAsync("/api/v1/auth/login", new { email, password = Password })).Body;
        const string newPassword = "a different long passphrase";

        var changed = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", here.GetProperty("access_token").GetString(),
            new { current_password = Password, new_password = newPassword });

        Assert.Equal(HttpStatusCode.NoContent, changed.Status);
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(await PostAsync("/api/v1/auth/login", new { email, password = Password })));
        Assert.Equal(HttpStatusCode.OK, (await PostAsync("/api/v1/auth/login", new { email, password = newPassword })).Status);
        // The session that changed it goes on; the other one, maybe someone else's, is over.
        Assert.Equal(HttpStatusCode.OK, (await PostAsync("/api/v1/auth/refresh", new { refresh_token = here.GetProperty("refresh_token").GetString() })).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync("/api/v1/auth/refresh", new { refresh_token = elsewhere.GetProperty("refresh_token").GetString() })).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", elsewhere.GetProperty("access_token").GetString())).Status);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={here.GetProperty("user").GetProperty("id").GetString()}&action=user.updated", admin);
        Assert.Contains("password", audit.Body.GetProperty("entries")[0].GetProperty("details").GetProperty("changed").EnumerateArray().Select(c => c.GetString()));
    }

    [Fact]
    public async Task ChangePassword_WrongCurrentOrWeakNew_Is4xx_ChangesNothing_AndWrongOnesCountTowardsLockout()
    {
        var email = await CreateUserAsync();
        var token = (await PostAsync("/api/v1/auth/login", new { email, password = Password })).Body.GetProperty("access_token").GetString();

        var weak = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { current_password = Password, new_password = "short" });
        var missing = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { new_password = "a different long passphrase" });
        var wrong = new List<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)>();
        for (var i = 0; i < 5; i++)
            wrong.Add(await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { current_password = "not it " + i, new_password = "a different long passphrase" }));
        var locked = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { current_password = Password, new_password = "a different long passphrase" });

        Assert.Equal("INVALID_REQUEST", ErrorCode(weak));
        Assert.Equal("new_password", weak.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Equal("current_password", missing.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.All(wrong, w => Assert.Equal("INVALID_CREDENTIALS", ErrorCode(w)));
        Assert.Equal("account_locked", locked.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal("account_locked", (await PostAsync("/api/v1/auth/login", new { email, password = Password })).Body
            .GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Me_ReturnsTheSeedShape()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);

        var (status, body, _) = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", token);

        Assert.Equal(HttpStatusCode.OK, status);
        var user = body.GetProperty("user");
        foreach (var field in new[] { "id", "email", "name", "roles", "permissions", "last_login", "created_at" })
            Assert.True(user.TryGetProperty(field, out _), field);
        Assert.Equal(email, user.GetProperty("email").GetString());
        Assert.NotEqual(JsonValueKind.Null, user.GetProperty("last_login").ValueKind);
    }

    /// <summary>
    /// Anyone can register an address at a company's domain: until the email is verified the account is no member
    /// (no org claims), and once an admin verifies it, its next token carries the organization all members share.
    /// </summary>
    [Fact]
    public async Task Organizations_MembershipNeedsAVerifiedEmail_MembersShareOne_FreeMailFormsNone()
    {
        var domain = $"acme-{Guid.NewGuid():N}.test";
        var firstEmail = NewEmail(domain);
        var first = (await PostAsync("/api/v1/auth/register", new { email = firstEmail, password = Password })).Body;
        var gmail = (await PostAsync("/api/v1/auth/register", new { email = NewEmail("gmail.com"), password = Password })).Body;
        var verifiedColleague = await CreateUserInAsync(domain);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var verify = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{first.GetProperty("user").GetProperty("id").GetString()}", admin, new { email_verified = true });

        var unverifiedJwt = await ValidateJwtAsync(first.GetProperty("access_token").GetString()!, "identity");
        var verifiedJwt = await ValidateJwtAsync(await LoginAsync(firstEmail), "identity");
        var colleagueJwt = await ValidateJwtAsync(await LoginAsync(verifiedColleague), "identity");
        var gmailJwt = await ValidateJwtAsync(gmail.GetProperty("access_token").GetString()!, "identity");
        Assert.False(unverifiedJwt.TryGetClaim("org_id", out _));
        Assert.False(unverifiedJwt.TryGetClaim("org_domain", out _));
        Assert.Equal(HttpStatusCode.OK, verify.Status);
        Assert.Equal(domain, verifiedJwt.GetClaim("org_domain").Value);
        Assert.Equal(colleagueJwt.GetClaim("org_id").Value, verifiedJwt.GetClaim("org_id").Value);
        Assert.False(gmailJwt.TryGetClaim("org_id", out _));
        // The unverified registrant was not made the organization's admin, and did not keep the verified colleague from it.
        Assert.DoesNotContain("org_admin", first.GetProperty("user").GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Contains("org_admin", colleagueJwt.Claims.Where(c => c.Type == "roles").Select(c => c.Value));
    }

    [Fact]
    public async Task Errors_CarryTheRequestIdOfTheResponse()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/auth/me");
        request.Headers.Add("X-Request-Id", "trace-abc.123");

        var response = await Http.SendAsync(request);

        Assert.Equal("trace-abc.123", response.Headers.GetValues("X-Request-Id").Single());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("trace-abc.123", body.RootElement.GetProperty("error").GetProperty("request_id").GetString());
    }
}
