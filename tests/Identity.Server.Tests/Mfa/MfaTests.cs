using System.Net;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Mfa;

/// <summary>TOTP with backup codes in every login path, checked with codes computed here from RFC 6238.</summary>
public sealed class MfaTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    const string MfaGrant = "urn:identity:params:oauth:grant-type:mfa-otp";

    sealed record Enrolled(string Email, byte[] Key, IReadOnlyList<string> BackupCodes, string SetupUri, string QrCode);

    /// <summary>A user with TOTP set up and confirmed with the code of the current step.</summary>
    async Task<Enrolled> EnrollAsync()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);
        var setup = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "totp" });
        Assert.Equal(HttpStatusCode.OK, setup.Status);
        var key = Otp.Base32Decode(setup.Body.GetProperty("secret").GetString()!);
        var verified = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = Otp.Totp(key, DateTimeOffset.UtcNow), method = "totp" });
        Assert.True(verified.Status == HttpStatusCode.OK, verified.Body.ToString());
        Assert.True(verified.Body.GetProperty("verified").GetBoolean());
        return new Enrolled(email, key, setup.Body.GetProperty("backup_codes").EnumerateArray().Select(c => c.GetString()!).ToList(),
            setup.Body.GetProperty("setup_uri").GetString()!, setup.Body.GetProperty("qr_code").GetString()!);
    }

    // The confirmation spent the current step; the next login uses the next one (within the ±1 step window).
    static string NextCode(Enrolled user) => Otp.Totp(user.Key, DateTimeOffset.UtcNow.AddSeconds(30));

    Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> LoginRawAsync(string email) =>
        ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });

    [Fact]
    public void Totp_MatchesTheRfc6238TestVectors()
    {
        var key = Encoding.ASCII.GetBytes("12345678901234567890");

        Assert.Equal("94287082", Otp.Totp(key, DateTimeOffset.FromUnixTimeSeconds(59), digits: 8));
        Assert.Equal("07081804", Otp.Totp(key, DateTimeOffset.FromUnixTimeSeconds(1111111109), digits: 8));
        Assert.Equal("14050471", Otp.Totp(key, DateTimeOffset.FromUnixTimeSeconds(1111111111), digits: 8));
        Assert.Equal("89005924", Otp.Totp(key, DateTimeOffset.FromUnixTimeSeconds(1234567890), digits: 8));
        Assert.Equal(key, Otp.Base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
    }

    [Fact]
    public async Task Setup_GivesSecretUriQrAndBackupCodes_AndIsOffUntilVerified()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);

        var setup = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "totp" });
        var beforeVerify = await LoginRawAsync(email);

        var secret = setup.Body.GetProperty("secret").GetString()!;
        var uri = setup.Body.GetProperty("setup_uri").GetString()!;
        Assert.StartsWith($"otpauth://totp/Identity:{Uri.EscapeDataString(email)}?secret={secret}&issuer=Identity", uri);
        var qr = setup.Body.GetProperty("qr_code").GetString()!;
        Assert.StartsWith("data:image/png;base64,", qr);
        Assert.Equal(uri, Otp.DecodeQr(qr["data:image/png;base64,".Length..]));
        var codes = setup.Body.GetProperty("backup_codes").EnumerateArray().Select(c => c.GetString()).ToList();
        Assert.Equal(10, codes.Distinct().Count());
        Assert.True(beforeVerify.Body.TryGetProperty("access_token", out _), "MFA must not apply before it is verified");

        var wrong = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = "000000", method = "totp" });
        var right = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = Otp.Totp(Otp.Base32Decode(secret), DateTimeOffset.UtcNow), method = "totp" });
        var afterVerify = await LoginRawAsync(email);

        Assert.Equal(HttpStatusCode.BadRequest, wrong.Status);
        Assert.True(right.Body.GetProperty("verified").GetBoolean());
        Assert.Equal(10, right.Body.GetProperty("remaining_backup_codes").GetInt32());
        Assert.True(afterVerify.Body.GetProperty("mfa_required").GetBoolean());

        // At rest: the secret only encrypted, the backup codes only hashed; the change is in the audit log.
        using var scope = Factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<Identity.Server.Data.IdentityDbContext>();
        var user = await db.Users.SingleAsync(u => u.Email == email);
        var factor = await db.MfaFactors.SingleAsync(f => f.UserId == user.Id);
        Assert.DoesNotContain(secret, factor.ProtectedSecret);
        Assert.Equal(secret, scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>()
            .CreateProtector("Identity.Mfa.TotpSecret").Unprotect(factor.ProtectedSecret));
        var hashes = await db.MfaBackupCodes.Where(c => c.UserId == user.Id).Select(c => c.Hash).ToListAsync();
        Assert.DoesNotContain(hashes, h => codes.Any(c => h.Contains(c!.Replace("-", ""))));
        Assert.Equal(1, await db.AuditEntries.CountAsync(a => a.SubjectId == user.Id && a.Action == "mfa.enabled"));
    }

    [Fact]
    public async Task Login_RememberMe_IsKeptThroughTheSecondFactor()
    {
        var user = await EnrollAsync();
        async Task<string> SignInAsync(object login, string code, string method)
        {
            var held = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: login);
            var finished = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = held.Body.GetProperty("mfa_token").GetString(), token = code, method });
            Assert.True(finished.Status == HttpStatusCode.OK, finished.Body.ToString());
            return finished.Body.GetProperty("refresh_token").GetString()!;
        }

        var remembered = await RefreshTokenLifetimeAsync(await SignInAsync(new { email = user.Email, password = Password, remember_me = true }, NextCode(user), "totp"));
        var forgotten = await RefreshTokenLifetimeAsync(await SignInAsync(new { email = user.Email, password = Password }, user.BackupCodes[0], "backup_code"));

        Assert.InRange(remembered, TimeSpan.FromDays(14) - TimeSpan.FromMinutes(1), TimeSpan.FromDays(14) + TimeSpan.FromMinutes(1));
        Assert.InRange(forgotten, TimeSpan.FromDays(1) - TimeSpan.FromMinutes(1), TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Login_HeldForTheSecondFactor_ThenTokensWithAmr()
    {
        var user = await EnrollAsync();

        var login = await LoginRawAsync(user.Email);
        var mfaToken = login.Body.GetProperty("mfa_token").GetString();
        var finished = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = NextCode(user), method = "totp" });
        var again = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = NextCode(user), method = "totp" });

        Assert.Equal(HttpStatusCode.OK, login.Status);
        Assert.False(login.Body.TryGetProperty("access_token", out _));
        Assert.Equal(["totp", "backup_code"], login.Body.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.InRange(login.Body.GetProperty("expires_in").GetInt32(), 60, 600);
        Assert.Equal(HttpStatusCode.OK, finished.Status);
        Assert.Equal(user.Email, finished.Body.GetProperty("user").GetProperty("email").GetString());
        var jwt = await ValidateJwtAsync(finished.Body.GetProperty("access_token").GetString()!, "identity");
        Assert.Equal(["pwd", "otp", "mfa"], jwt.GetPayloadValue<string[]>("amr"));
        Assert.Equal(HttpStatusCode.Unauthorized, again.Status);
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(again));
    }

    [Fact]
    public async Task Totp_ACodeIsGoodOnlyOnce()
    {
        var user = await EnrollAsync();
        var code = NextCode(user);
        var first = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();
        var second = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();

        var used = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = first, token = code, method = "totp" });
        var replayed = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = second, token = code, method = "totp" });

        Assert.Equal(HttpStatusCode.OK, used.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, replayed.Status);
        Assert.Equal("invalid_code", replayed.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task BackupCode_WorksOnce()
    {
        var user = await EnrollAsync();
        var code = user.BackupCodes[3];

        var first = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString(), token = code.ToUpperInvariant(), method = "backup_code" });
        var second = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString(), token = code, method = "backup_code" });

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(first.Body.GetProperty("access_token").GetString()!, "identity")).GetPayloadValue<string[]>("amr"));
        Assert.Equal(HttpStatusCode.Unauthorized, second.Status);
    }

    [Fact]
    public async Task FiveWrongCodes_KillTheChallengeAndLockMfa()
    {
        var user = await EnrollAsync();
        var mfaToken = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();

        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
            answers.Add((await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = $"00000{i}", method = "totp" })).Status);
        var rightButDead = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = NextCode(user), method = "totp" });
        var freshChallenge = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();
        var rightButLocked = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = freshChallenge, token = NextCode(user), method = "totp" });

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.Unauthorized, 4).Append(HttpStatusCode.Forbidden), answers);
        Assert.Equal(HttpStatusCode.Unauthorized, rightButDead.Status);
        Assert.Equal(HttpStatusCode.Forbidden, rightButLocked.Status);
        Assert.Equal("mfa_locked", rightButLocked.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }

    /// <summary>
    /// Requests racing on one mfa_token: the right code gives one set of tokens, not one per request, and wrong codes
    /// sent all at once are checked no more times than one after the other would be.
    /// </summary>
    [Fact]
    public async Task RacingRequests_OneMfaTokenGivesOneSignIn_AndNoMoreGuessesThanTheLimit()
    {
        var user = await EnrollAsync();
        var rightCode = NextCode(user);
        var first = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();
        var second = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();

        var sameRightCode = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = first, token = rightCode, method = "totp" })));
        var wrongCodes = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = second, token = $"{i:000000}", method = "totp" })));

        Assert.Single(sameRightCode, a => a.Status == HttpStatusCode.OK);
        var checkedCodes = wrongCodes.Count(a => a.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString() != "invalid_mfa_token");
        Assert.InRange(checkedCodes, 1, 5);
    }

    [Fact]
    public async Task PasswordGrant_AnswersMfaRequired_ThenTheMfaGrantIssuesTokens()
    {
        var user = await EnrollAsync();

        var password = await PasswordGrantAsync(user.Email);
        var mfaToken = password.Json?.GetProperty("mfa_token").GetString();
        var finished = await Http.RequestTokenAsync(new TokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, GrantType = MfaGrant,
            Parameters = { { "mfa_token", mfaToken! }, { "otp", NextCode(user) }, { "method", "totp" }, { "scope", "openid identity" } },
        });

        Assert.Equal("mfa_required", password.Error);
        Assert.Null(password.AccessToken);
        Assert.False(finished.IsError, finished.Raw);
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(finished.AccessToken!, "identity")).GetPayloadValue<string[]>("amr"));
    }

    [Fact]
    public async Task MfaToken_IsBoundToTheClientThatStartedTheLogin()
    {
        var user = await EnrollAsync();
        var facadeChallenge = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString();

        var elsewhere = await Http.RequestTokenAsync(new TokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, GrantType = MfaGrant,
            Parameters = { { "mfa_token", facadeChallenge! }, { "otp", NextCode(user) }, { "scope", "identity" } },
        });

        Assert.Equal("invalid_grant", elsewhere.Error);
    }

    [Fact]
    public async Task LoginPage_AsksForTheCode_ThenContinuesTheAuthorization()
    {
        var user = await EnrollAsync();
        var browser = new Browser(Factory);
        var authorize = QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Web, ["redirect_uri"] = ServerFactory.WebRedirect, ["response_type"] = "code", ["scope"] = "openid identity",
        });

        var codePage = await browser.LoginAsync(await browser.OpenAsync(authorize), user.Email, Password);
        var wrong = await browser.SubmitAsync(codePage, new Dictionary<string, string> { ["Code"] = "123456" });
        var done = await browser.SubmitAsync(wrong, new Dictionary<string, string> { ["Code"] = NextCode(user) });

        Assert.Null(codePage.LeftTo);
        Assert.NotNull(codePage.Document!.QuerySelector("input[name=Code]"));
        Assert.Equal("That code is not valid.", wrong.Document!.QuerySelector("[role=alert]")!.TextContent);
        var code = QueryHelpers.ParseQuery(done.LeftTo!.Query)["code"].ToString();
        var tokens = await Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, Code = code, RedirectUri = ServerFactory.WebRedirect,
        });
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(tokens.AccessToken!, "identity")).GetPayloadValue<string[]>("amr"));
    }

    [Fact]
    public async Task Disable_NeedsACurrentCode_AdminCanReset()
    {
        var user = await EnrollAsync();
        var token = (await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = (await LoginRawAsync(user.Email)).Body.GetProperty("mfa_token").GetString(), token = user.BackupCodes[0], method = "backup_code" }))
            .Body.GetProperty("access_token").GetString();

        var wrong = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/mfa", token, new { token = "999999" });
        var right = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/mfa", token, new { token = user.BackupCodes[1] });
        var plainLogin = await LoginRawAsync(user.Email);

        Assert.Equal(HttpStatusCode.BadRequest, wrong.Status);
        Assert.Equal(HttpStatusCode.NoContent, right.Status);
        Assert.True(plainLogin.Body.TryGetProperty("access_token", out _));

        var other = await EnrollAsync();
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var id = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(other.Email)}", admin)).Body.GetProperty("users")[0].GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.NoContent, (await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/mfa", admin)).Status);
        Assert.True((await LoginRawAsync(other.Email)).Body.TryGetProperty("access_token", out _));

        // Both ways off are on record, the admin's with the admin as the actor.
        var disabled = (await ApiAsync(HttpMethod.Get, "/api/v1/audit?action=mfa.disabled&limit=100", admin)).Body.GetProperty("entries").EnumerateArray().ToList();
        var selfId = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(user.Email)}", admin)).Body.GetProperty("users")[0].GetProperty("id").GetString();
        Assert.Contains(disabled, e => e.GetProperty("subject").GetString() == selfId);
        var reset = Assert.Single(disabled, e => e.GetProperty("subject").GetString() == id);
        Assert.NotEqual(id, reset.GetProperty("actor").GetString());
    }

    [Fact]
    public async Task Setup_UnconfiguredPhoneOrUnknownMethod_Is400_AndSetupNeedsAToken()
    {
        var token = await LoginAsync(await CreateUserAsync());

        var phone = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "phone", phone = "+15555550100" });
        var unknown = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "carrier-pigeon" });
        var anonymous = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", body: new { method = "totp" });
        var verifyAnonymous = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { token = "123456" });

        Assert.Equal("INVALID_REQUEST", ErrorCode(phone));
        Assert.Contains("SMS", phone.Body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("INVALID_REQUEST", ErrorCode(unknown));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
        Assert.Equal(HttpStatusCode.BadRequest, verifyAnonymous.Status);
    }
}
