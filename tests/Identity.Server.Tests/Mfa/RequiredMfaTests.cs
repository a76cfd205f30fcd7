using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Mfa;

/// <summary>Accounts with the role org_admin must have a second factor (Identity:Mfa:RequiredForRoles).</summary>
public sealed class RequiredMfaServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Mfa:RequiredForRoles:0", "Org_Admin")]);

/// <summary>
/// Required two-step verification (Keycloak's "Configure OTP" required action, Auth0's "Require MFA" with enrolment):
/// a login of an account that must have a second factor and has none is held until it sets up an authenticator app,
/// on every door (the auth API, the password grant, the login page), and the factor cannot be turned off by its user.
/// Codes are computed here from RFC 6238.
/// </summary>
public sealed class RequiredMfaTests(RequiredMfaServer server) : ServerTests<RequiredMfaServer>(server)
{
    const string MfaGrant = "urn:identity:params:oauth:grant-type:mfa-otp";

    Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> LoginRawAsync(string email) =>
        ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });

    static byte[] KeyOf(JsonElement enrollment) => Otp.Base32Decode(enrollment.GetProperty("secret").GetString()!);

    [Fact]
    public async Task AuthApi_Login_SetsUpTheApp_WhoseFirstCodeTurnsItOnAndFinishesTheLogin()
    {
        var required = await CreateUserAsync("org_admin");
        var other = await CreateUserAsync();

        var held = await LoginRawAsync(required);
        var mfaToken = held.Body.GetProperty("mfa_token").GetString();
        var enrollment = held.Body.GetProperty("enrollment");
        var key = KeyOf(enrollment);
        var backupCode = enrollment.GetProperty("backup_codes")[0].GetString();
        var byBackupCode = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = backupCode, method = "backup_code" });
        var wrong = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = "000000", method = "totp" });
        var finished = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new { mfa_token = mfaToken, token = Otp.Totp(key, DateTimeOffset.UtcNow), method = "totp" });
        var next = await LoginRawAsync(required);
        var plain = await LoginRawAsync(other);

        Assert.Equal(HttpStatusCode.OK, held.Status);
        Assert.True(held.Body.GetProperty("mfa_required").GetBoolean());
        Assert.True(held.Body.GetProperty("enrollment_required").GetBoolean());
        Assert.Equal(["totp"], held.Body.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.False(held.Body.TryGetProperty("access_token", out _));
        Assert.StartsWith("otpauth://totp/", enrollment.GetProperty("setup_uri").GetString());
        Assert.Equal(enrollment.GetProperty("setup_uri").GetString(), Otp.DecodeQr(enrollment.GetProperty("qr_code").GetString()!["data:image/png;base64,".Length..]));
        Assert.Equal(10, enrollment.GetProperty("backup_codes").GetArrayLength());
        // A backup code proves no app: it cannot finish a setup.
        Assert.Equal(HttpStatusCode.Unauthorized, byBackupCode.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.True(finished.Status == HttpStatusCode.OK, finished.Body.ToString());
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(finished.Body.GetProperty("access_token").GetString()!, "identity")).GetPayloadValue<string[]>("amr"));
        // Set up for good: the next login asks for a code, and the backup codes shown at the setup work.
        Assert.True(next.Body.GetProperty("mfa_required").GetBoolean());
        Assert.False(next.Body.TryGetProperty("enrollment", out _));
        Assert.Equal(["totp", "backup_code"], next.Body.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        var byBackup = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = next.Body.GetProperty("mfa_token").GetString(), token = backupCode, method = "backup_code" });
        Assert.Equal(HttpStatusCode.OK, byBackup.Status);
        // The policy names a role: accounts without it sign in with their password alone.
        Assert.True(plain.Body.TryGetProperty("access_token", out _), plain.Body.ToString());
    }

    [Fact]
    public async Task PasswordGrant_AnswersMfaRequiredWithTheSetup_ThenTheMfaGrantFinishes()
    {
        var email = await CreateUserAsync("org_admin");

        var password = await PasswordGrantAsync(email);
        var enrollment = password.Json!.Value.GetProperty("enrollment");
        var finished = await Http.RequestTokenAsync(new TokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, GrantType = MfaGrant,
            Parameters =
            {
                { "mfa_token", password.Json!.Value.GetProperty("mfa_token").GetString()! }, { "otp", Otp.Totp(KeyOf(enrollment), DateTimeOffset.UtcNow) },
                { "method", "totp" }, { "scope", "openid identity" },
            },
        });

        Assert.Equal("mfa_required", password.Error);
        Assert.Null(password.AccessToken);
        Assert.True(password.Json!.Value.GetProperty("enrollment_required").GetBoolean());
        Assert.Equal(10, enrollment.GetProperty("backup_codes").GetArrayLength());
        Assert.False(finished.IsError, finished.Raw);
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(finished.AccessToken!, "identity")).GetPayloadValue<string[]>("amr"));
        Assert.Equal("mfa_required", (await PasswordGrantAsync(email)).Error);
    }

    [Fact]
    public async Task LoginPage_ShowsTheSetup_ThenItsCodeContinuesTheAuthorization()
    {
        var email = await CreateUserAsync("org_admin");
        var browser = new Browser(Factory);
        var client = OidcClientFor(ServerFactory.Spa, ServerFactory.SpaRedirect, "openid");
        var state = await client.PrepareLoginAsync();

        var setupPage = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);
        var secret = setupPage.Document!.QuerySelector("#secret")?.TextContent;
        var qr = setupPage.Document.QuerySelector("img[alt^='QR code']")?.GetAttribute("src");
        var wrong = await browser.SubmitAsync(setupPage, new Dictionary<string, string> { ["Code"] = "000000" });
        var consent = await browser.SubmitAsync(wrong, new Dictionary<string, string> { ["Code"] = Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow) });
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);

        Assert.Equal("/Account/Login", setupPage.Url.AbsolutePath);
        Assert.NotNull(setupPage.Document.QuerySelector("#enrollment"));
        Assert.Equal(10, setupPage.Document.QuerySelectorAll(".backup-codes li").Length);
        Assert.Contains($"secret={secret}", Otp.DecodeQr(qr!["data:image/png;base64,".Length..]));
        Assert.Equal("That code is not valid.", wrong.Document!.QuerySelector(".error")?.TextContent);
        Assert.Null(wrong.Document.QuerySelector("#secret"));
        Assert.Equal("/Account/Consent", consent.Url.AbsolutePath);
        Assert.False(result.IsError, result.Error);
        Assert.Equal(["pwd", "otp", "mfa"], result.User.FindAll("amr").Select(c => c.Value));
        // The account console cannot turn it off: the policy requires it.
        var mfaPage = await browser.OpenAsync("/Account/Mfa");
        var refused = await browser.SubmitAsync(mfaPage, new Dictionary<string, string> { ["Code"] = Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow.AddSeconds(30)) });
        Assert.Contains("cannot be turned off", refused.Document!.QuerySelector(".error")?.TextContent);
        Assert.Contains("is on", refused.Document.Body!.TextContent);
    }

    [Fact]
    public async Task TheUserCannotTurnItOff_AnAdministratorsResetMeansANewSetupAtTheNextLogin()
    {
        var email = await CreateUserAsync("org_admin");
        var held = await LoginRawAsync(email);
        var key = KeyOf(held.Body.GetProperty("enrollment"));
        var token = (await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = held.Body.GetProperty("mfa_token").GetString(), token = Otp.Totp(key, DateTimeOffset.UtcNow), method = "totp" }))
            .Body.GetProperty("access_token").GetString();

        var disable = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/mfa", token, new { token = Otp.Totp(key, DateTimeOffset.UtcNow.AddSeconds(30)) });
        // The seeded administrator is its domain's first member, so its org_admin, and held like any other; this one is not.
        var admin = await LoginAsync(await CreateUserAsync("admin"));
        string id;
        using (var scope = Factory.Services.CreateScope())
            id = (await scope.ServiceProvider.GetRequiredService<UserManager<User>>().FindByEmailAsync(email))!.Id;
        var reset = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/mfa", admin);
        var after = await LoginRawAsync(email);

        Assert.Equal(HttpStatusCode.Forbidden, disable.Status);
        Assert.Equal("mfa_required_by_policy", disable.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.NoContent, reset.Status);
        Assert.True(after.Body.GetProperty("enrollment_required").GetBoolean());
        Assert.NotEqual(Convert.ToBase64String(key), Convert.ToBase64String(KeyOf(after.Body.GetProperty("enrollment"))));
    }
}

/// <summary>Every account must have a second factor (Identity:Mfa:Required).</summary>
public sealed class EveryoneMfaServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Mfa:Required", "true")]);

public sealed class EveryoneMfaTests(EveryoneMfaServer server) : ServerTests<EveryoneMfaServer>(server)
{
    /// <summary>Without a role named, a new account's first login sets up an app.</summary>
    [Fact]
    public async Task EveryLogin_WithoutASecondFactor_IsHeldForItsSetup()
    {
        var email = await CreateUserAsync();

        var held = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });

        Assert.Equal(HttpStatusCode.OK, held.Status);
        Assert.True(held.Body.GetProperty("enrollment_required").GetBoolean());
        Assert.False(held.Body.TryGetProperty("access_token", out _));
    }
}
