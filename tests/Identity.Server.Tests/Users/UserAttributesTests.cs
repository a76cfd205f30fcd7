using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Users;

/// <summary>
/// Three declared attributes: department, for identity tokens under the profile scope, which a directory provisions as
/// the SCIM enterprise extension's department; cost_centers, several values, for access tokens only; and job_title,
/// SCIM's title.
/// </summary>
public sealed class AttributesServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:UserAttributes:0:Name", "department"), new("Identity:UserAttributes:0:Scope", "profile"),
    new("Identity:UserAttributes:0:Scim", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
    new("Identity:UserAttributes:1:Name", "cost_centers"), new("Identity:UserAttributes:1:Multivalued", "true"),
    new("Identity:UserAttributes:2:Name", "job_title"), new("Identity:UserAttributes:2:Scim", "title"),
]);

/// <summary>
/// Custom user attributes as token claims (Keycloak's user profile attributes with mappers, Auth0's app_metadata
/// claims): administrators set them on /api/v1/users, and every token issued after a change carries the new values.
/// </summary>
public sealed class UserAttributesTests(AttributesServer server) : ServerTests<AttributesServer>(server)
{
    Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    static JsonElement UserOf((HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response) answer) => answer.Body.GetProperty("user");

    async Task<(string Id, string Email)> CreateWithAttributesAsync(string admin, object attributes)
    {
        var email = $"attr-{Guid.NewGuid():N}@example.test";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email, password = Password, email_verified = true, attributes });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return (UserOf(created).GetProperty("id").GetString()!, email);
    }

    [Fact]
    public async Task Attributes_SetOnTheAccount_ShowInTheApiAndItsTokens_ByScope()
    {
        var admin = await AdminAsync();
        var (id, email) = await CreateWithAttributesAsync(admin, new { department = "Finance", cost_centers = new[] { "CC-200", "CC-100" } });

        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin);
        var withProfile = await PasswordGrantAsync(email);
        var withoutProfile = await PasswordGrantAsync(email, scope: "openid email identity");

        var attributes = UserOf(read).GetProperty("attributes");
        Assert.Equal("Finance", attributes.GetProperty("department").GetString());
        Assert.Equal(["CC-200", "CC-100"], attributes.GetProperty("cost_centers").EnumerateArray().Select(v => v.GetString()));
        var access = await ValidateJwtAsync(withProfile.AccessToken!, "identity");
        Assert.Equal("Finance", access.GetPayloadValue<string>("department"));
        // A multivalued attribute is a JSON array, its values in the order set.
        Assert.Equal(["CC-200", "CC-100"], access.GetPayloadValue<string[]>("cost_centers"));
        var identityToken = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(withProfile.IdentityToken);
        Assert.Equal("Finance", identityToken.GetPayloadValue<string>("department"));
        Assert.False(identityToken.TryGetPayloadValue<object>("cost_centers", out _));
        // Without its scope the identity token leaves department out; the access token for the API still has it.
        Assert.False(new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(withoutProfile.IdentityToken).TryGetPayloadValue<object>("department", out _));
        Assert.Equal("Finance", (await ValidateJwtAsync(withoutProfile.AccessToken!, "identity")).GetPayloadValue<string>("department"));
        // Userinfo answers as the identity token would.
        var userinfo = await Http.GetUserInfoAsync(new UserInfoRequest { Address = "/connect/userinfo", Token = withProfile.AccessToken });
        Assert.Equal("Finance", userinfo.Json!.Value.GetProperty("department").GetString());
        Assert.False(userinfo.Json!.Value.TryGetProperty("cost_centers", out _));
    }

    [Fact]
    public async Task AChange_ShowsInTheNextRefresh_IsAudited_AndTheRefreshTokenHoldsNone()
    {
        var admin = await AdminAsync();
        var (id, email) = await CreateWithAttributesAsync(admin, new { department = "Finance", cost_centers = new[] { "CC-100" } });
        var first = await PasswordGrantAsync(email);

        var changed = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { attributes = new { department = "Legal", cost_centers = (string[]?)null } });
        var unchanged = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { attributes = new { department = "Legal" } });
        var renewed = await RefreshAsync(first.RefreshToken!);

        Assert.Equal(HttpStatusCode.OK, changed.Status);
        var attributes = UserOf(changed).GetProperty("attributes");
        Assert.Equal("Legal", attributes.GetProperty("department").GetString());
        Assert.False(attributes.TryGetProperty("cost_centers", out _));
        Assert.Equal(HttpStatusCode.OK, unchanged.Status);
        var access = await ValidateJwtAsync(renewed.AccessToken!, "identity");
        Assert.Equal("Legal", access.GetPayloadValue<string>("department"));
        Assert.False(access.TryGetPayloadValue<object>("cost_centers", out _));
        Assert.Equal("Legal", new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(renewed.IdentityToken).GetPayloadValue<string>("department"));
        // The refresh token carries the sign-in, not the account: attributes are read afresh at every renewal.
        var sealedRefresh = await OpenWithSecretKeysAsync(renewed.RefreshToken!);
        Assert.False(sealedRefresh.TryGetPayloadValue<object>("department", out _));
        // One user.updated names what changed; setting the same value again records nothing.
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}&action=user.updated", admin);
        var entries = audit.Body.GetProperty("entries").EnumerateArray().ToList();
        var entry = Assert.Single(entries);
        Assert.Equal(["attributes.cost_centers", "attributes.department"],
            entry.GetProperty("details").GetProperty("changed").EnumerateArray().Select(c => c.GetString()));
    }

    [Fact]
    public async Task BadAttributes_AreRefusedWithTheirField_AndNothingStoredIsLost()
    {
        var admin = await AdminAsync();
        var (id, _) = await CreateWithAttributesAsync(admin, new { department = "Finance" });

        var undeclared = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { name = "Renamed", attributes = new { salary = "1" } });
        var twoValues = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { attributes = new { department = new[] { "A", "B" } } });
        var number = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { attributes = new { cost_centers = new object[] { "CC-1", 2 } } });
        var empty = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { attributes = new { department = "" } });
        var tooLong = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { attributes = new { department = new string('x', 1025) } });
        var tooMany = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin,
            new { attributes = new { cost_centers = Enumerable.Range(0, 101).Select(i => $"CC-{i}").ToArray() } });
        var atCreation = await ApiAsync(HttpMethod.Post, "/api/v1/users", admin,
            new { email = $"attr-{Guid.NewGuid():N}@example.test", password = Password, attributes = new { salary = "1" } });
        var read = await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", admin);

        foreach (var (answer, field) in new[]
        {
            (undeclared, "attributes.salary"), (twoValues, "attributes.department"), (number, "attributes.cost_centers"),
            (empty, "attributes.department"), (tooLong, "attributes.department"), (tooMany, "attributes.cost_centers"), (atCreation, "attributes.salary"),
        })
        {
            Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
            Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
            Assert.Equal(field, answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        }
        Assert.Contains("department", undeclared.Body.GetProperty("error").GetProperty("message").GetString());
        // A refused request changes nothing, not even its valid parts.
        Assert.Equal("Finance", UserOf(read).GetProperty("attributes").GetProperty("department").GetString());
        Assert.NotEqual("Renamed", UserOf(read).GetProperty("name").GetString());
    }

    [Fact]
    public async Task AnOrganizationAdmin_CannotSetAttributes_NotEvenTheirOwn()
    {
        var acme = $"acme-{Guid.NewGuid():N}.test";
        var orgAdminEmail = await CreateUserInAsync(acme);      // first verified member: org_admin
        var memberEmail = await CreateUserInAsync(acme);
        var orgAdmin = await LoginAsync(orgAdminEmail);
        var me = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", orgAdmin);
        var admin = await AdminAsync();
        var memberId = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(memberEmail)}", admin)).Body.GetProperty("users")[0].GetProperty("id").GetString();

        var own = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{UserOf(me).GetProperty("id").GetString()}", orgAdmin, new { attributes = new { department = "Board" } });
        var member = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{memberId}", orgAdmin, new { attributes = new { department = "Board" } });
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/users", orgAdmin,
            new { email = $"new-{Guid.NewGuid():N}@{acme}", password = Password, attributes = new { department = "Board" } });
        var renamed = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{memberId}", orgAdmin, new { name = "Still allowed" });

        Assert.All([own, member, created], answer =>
        {
            Assert.Equal(HttpStatusCode.Forbidden, answer.Status);
            Assert.Equal("attributes", answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        });
        Assert.Equal(HttpStatusCode.OK, renamed.Status);
        Assert.False(UserOf(renamed).GetProperty("attributes").TryGetProperty("department", out _));
    }

    [Fact]
    public async Task TheUser_SeesTheirOwnAttributes_OnMe()
    {
        var admin = await AdminAsync();
        var (_, email) = await CreateWithAttributesAsync(admin, new { cost_centers = new[] { "CC-7" } });

        var me = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", await LoginAsync(email));

        Assert.Equal(["CC-7"], UserOf(me).GetProperty("attributes").GetProperty("cost_centers").EnumerateArray().Select(v => v.GetString()));
    }
}
