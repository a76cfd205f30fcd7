using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Account;

public sealed class PasswordHistoryServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Passwords:History", "3")]);

/// <summary>
/// Identity:Passwords:History (Keycloak's "Not Recently Used", PCI DSS 8.3.7): a new password must differ from the
/// account's last N, the current one included, however it is set; older ones may come back.
/// </summary>
public sealed class PasswordHistoryTests(PasswordHistoryServer server) : ServerTests<PasswordHistoryServer>(server)
{
    const string A = "first long passphrase", B = "second long passphrase", C = "third long passphrase", D = "fourth long passphrase";

    [Fact]
    public async Task TheLastThreePasswords_CannotComeBack_TheFourthCan()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);
        string current = Password;

        async Task<(HttpStatusCode Status, string? Rule)> ChangeAsync(string next)
        {
            var answer = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { current_password = current, new_password = next });
            if (answer.Status == HttpStatusCode.NoContent)
                current = next;
            return (answer.Status, answer.Status == HttpStatusCode.NoContent ? null
                : answer.Body.GetProperty("error").GetProperty("details").GetProperty("rule").GetString());
        }

        Assert.Equal((HttpStatusCode.BadRequest, "PasswordRecentlyUsed"), await ChangeAsync(Password));   // the current one
        Assert.Equal((HttpStatusCode.NoContent, null), await ChangeAsync(A));
        Assert.Equal((HttpStatusCode.NoContent, null), await ChangeAsync(B));
        Assert.Equal((HttpStatusCode.BadRequest, "PasswordRecentlyUsed"), await ChangeAsync(A));           // two back
        Assert.Equal((HttpStatusCode.BadRequest, "PasswordRecentlyUsed"), await ChangeAsync(Password));    // three back: B, A, Password
        Assert.Equal((HttpStatusCode.NoContent, null), await ChangeAsync(C));
        Assert.Equal((HttpStatusCode.NoContent, null), await ChangeAsync(Password));                       // four back: free again
        Assert.False((await PasswordGrantAsync(email, Password)).IsError);
    }

    [Fact]
    public async Task AnAdministratorsReset_IsHeldToTheRuleToo()
    {
        var email = await CreateUserAsync();
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var id = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(await LoginAsync(email)).Subject;

        var changed = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { password = D });
        var back = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { password = Password });

        Assert.Equal(HttpStatusCode.OK, changed.Status);
        Assert.Equal(HttpStatusCode.BadRequest, back.Status);
        Assert.Equal("PasswordRecentlyUsed", back.Body.GetProperty("error").GetProperty("details").GetProperty("rule").GetString());
        Assert.False((await PasswordGrantAsync(email, D)).IsError);
    }
}

/// <summary>Off by default, as in Keycloak: nothing is remembered and a password may be set again.</summary>
public sealed class NoPasswordHistoryTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    [Fact]
    public async Task APasswordMayBeSetAgain_AndNoHistoryIsKept()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);

        var away = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { current_password = Password, new_password = "a passphrase for a while" });
        var back = await ApiAsync(HttpMethod.Post, "/api/v1/auth/password", token, new { current_password = "a passphrase for a while", new_password = Password });

        Assert.Equal(HttpStatusCode.NoContent, away.Status);
        Assert.Equal(HttpStatusCode.NoContent, back.Status);
        await using var scope = Factory.Services.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Identity.Server.Data.User>>().FindByEmailAsync(email);
        Assert.Null(user!.PasswordHistory);
    }
}
