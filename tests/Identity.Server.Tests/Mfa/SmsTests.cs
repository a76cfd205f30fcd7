using System.Net;
using System.Text.RegularExpressions;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Mfa;

public sealed class SmsServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:Mfa:Sms:DevelopmentFolder", SmsFolder),
])
{
    public static readonly string SmsFolder = Directory.CreateTempSubdirectory("identity-sms-").FullName;
}

/// <summary>The phone factor, with the development sender that writes each text message to a folder.</summary>
public sealed partial class SmsTests(SmsServer server) : ServerTests<SmsServer>(server)
{
    [GeneratedRegex(@"code is (\d{6})")]
    private static partial Regex Code();

    static string LastCodeSentTo(string phone)
    {
        var file = new DirectoryInfo(SmsServer.SmsFolder).GetFiles($"*-{phone.TrimStart('+')}.txt").OrderBy(f => f.Name).Last();
        var text = File.ReadAllText(file.FullName);
        Assert.Contains($"To: {phone}", text);
        return Code().Match(text).Groups[1].Value;
    }

    [Fact]
    public async Task Phone_SetUpWithTheTextedCode_ThenEveryLoginGetsOne()
    {
        var email = await CreateUserAsync();
        var phone = "+1555" + Random.Shared.Next(1_000_000, 9_999_999);
        var token = await LoginAsync(email);

        var setup = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "phone", phone });
        var wrong = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = "000000", method = "phone" });
        var confirmed = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = LastCodeSentTo(phone), method = "phone" });
        var login = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });
        var finished = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = login.Body.GetProperty("mfa_token").GetString(), token = LastCodeSentTo(phone), method = "sms" });

        Assert.Equal(HttpStatusCode.OK, setup.Status);
        Assert.EndsWith(phone[^2..], setup.Body.GetProperty("phone").GetString());
        Assert.DoesNotContain(phone, setup.Body.GetProperty("phone").GetString());
        Assert.Equal(10, setup.Body.GetProperty("backup_codes").GetArrayLength());
        Assert.Equal(HttpStatusCode.BadRequest, wrong.Status);
        Assert.True(confirmed.Body.GetProperty("verified").GetBoolean(), confirmed.Body.ToString());
        Assert.Equal(["sms", "backup_code"], login.Body.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(HttpStatusCode.OK, finished.Status);
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(finished.Body.GetProperty("access_token").GetString()!, "identity")).GetPayloadValue<string[]>("amr"));
    }

    [Fact]
    public async Task Phone_WrongCodeOrBadNumber_IsRefused()
    {
        var email = await CreateUserAsync();
        var phone = "+1555" + Random.Shared.Next(1_000_000, 9_999_999);
        var token = await LoginAsync(email);
        var badNumber = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "phone", phone = "555-0100" });
        await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "phone", phone });
        await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", token, new { token = LastCodeSentTo(phone), method = "phone" });

        var login = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });
        var sent = LastCodeSentTo(phone);
        var wrong = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify",
            body: new { mfa_token = login.Body.GetProperty("mfa_token").GetString(), token = sent == "123456" ? "654321" : "123456", method = "sms" });

        Assert.Equal("INVALID_REQUEST", ErrorCode(badNumber));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal("invalid_code", wrong.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }
}
