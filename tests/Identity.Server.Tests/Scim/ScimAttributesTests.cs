using System.Net;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;
using Identity.Server.Tests.Users;

namespace Identity.Server.Tests.Scim;

/// <summary>
/// A directory provisions declared user attributes (Identity:UserAttributes:N:Scim) as Microsoft Entra ID and Okta
/// send them: the enterprise extension's department and the User schema's title, in whole resources and in PATCH
/// operations by path or by value; the account's tokens carry what it provisioned.
/// </summary>
public sealed class ScimAttributesTests(AttributesServer server) : ScimTestsBase<AttributesServer>(server)
{
    const string Enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    static object Patch(params object[] operations) => new { schemas = new[] { PatchSchema }, Operations = operations };

    async Task<JsonElement> AttributesOfAsync(string id) =>
        (await ApiAsync(HttpMethod.Get, $"/api/v1/users/{id}", await AdminAsync())).Body.GetProperty("user").GetProperty("attributes");

    [Fact]
    public async Task Discovery_ListsTheExtensionAndTheAttributesKept()
    {
        var schemas = Ok(await ScimAsync(HttpMethod.Get, "/scim/v2/Schemas"));
        var enterprise = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Schemas/{Enterprise}"));
        var userType = Ok(await ScimAsync(HttpMethod.Get, "/scim/v2/ResourceTypes/User"));

        var user = Resources(schemas).Single(s => s.GetProperty("id").GetString() == UserSchema);
        Assert.Contains("title", user.GetProperty("attributes").EnumerateArray().Select(a => a.GetProperty("name").GetString()));
        Assert.Contains(Enterprise, Resources(schemas).Select(s => s.GetProperty("id").GetString()));
        Assert.Equal(["department"], enterprise.GetProperty("attributes").EnumerateArray().Select(a => a.GetProperty("name").GetString()));
        Assert.Equal(Enterprise, userType.GetProperty("schemaExtensions")[0].GetProperty("schema").GetString());
    }

    [Fact]
    public async Task ProvisionedAttributes_AreKept_ShownAndIssuedInTokens()
    {
        var email = NewEmail();
        var created = Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Users", new Dictionary<string, object>
        {
            ["schemas"] = new[] { UserSchema, Enterprise }, ["userName"] = email, ["password"] = Password, ["title"] = "Engineer",
            // manager and employeeNumber are not declared here: accepted, not kept.
            [Enterprise] = new Dictionary<string, object> { ["department"] = "Finance", ["employeeNumber"] = "701", ["manager"] = new { value = "someone" } },
        }), HttpStatusCode.Created);
        var id = Id(created);

        var attributes = await AttributesOfAsync(id);
        var tokens = await PasswordGrantAsync(email);
        var read = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));

        Assert.Equal("Finance", created.GetProperty(Enterprise).GetProperty("department").GetString());
        Assert.False(created.GetProperty(Enterprise).TryGetProperty("employeeNumber", out _));
        Assert.Equal("Engineer", created.GetProperty("title").GetString());
        Assert.Contains(Enterprise, Strings(read.GetProperty("schemas")));
        Assert.Equal("Finance", read.GetProperty(Enterprise).GetProperty("department").GetString());
        Assert.Equal("Finance", attributes.GetProperty("department").GetString());
        Assert.Equal("Engineer", attributes.GetProperty("job_title").GetString());
        var access = await ValidateJwtAsync(tokens.AccessToken!, "identity");
        Assert.Equal("Finance", access.GetPayloadValue<string>("department"));
        Assert.Equal("Engineer", access.GetPayloadValue<string>("job_title"));
    }

    [Fact]
    public async Task PatchAndReplace_ChangeAndClearThem_AsEntraAndOktaSendThem()
    {
        var email = NewEmail();
        var id = Id(Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Users", new Dictionary<string, object>
        {
            ["schemas"] = new[] { UserSchema, Enterprise }, ["userName"] = email, ["password"] = Password,
            [Enterprise] = new { department = "Finance" },
        }), HttpStatusCode.Created));
        var before = await PasswordGrantAsync(email);

        // Entra ID: the extension's attribute by its full path, op in any case.
        var byPath = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(
            new { op = "Replace", path = $"{Enterprise}:department", value = "Legal" },
            new { op = "Add", path = "title", value = "Counsel" })));
        var renewed = await RefreshAsync(before.RefreshToken!);
        // Okta: the attributes as the value of an operation without a path.
        var byValue = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(
            new { op = "replace", value = new Dictionary<string, object> { [$"{Enterprise}:department"] = "Operations" } })));
        var removed = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(new { op = "remove", path = $"{Enterprise}:department" })));
        var afterRemove = await AttributesOfAsync(id);
        // A whole resource without them clears them.
        var replaced = Ok(await ScimAsync(HttpMethod.Put, $"/scim/v2/Users/{id}", new { schemas = new[] { UserSchema }, userName = email }));
        var afterReplace = await AttributesOfAsync(id);

        Assert.Equal("Legal", byPath.GetProperty(Enterprise).GetProperty("department").GetString());
        Assert.Equal("Counsel", byPath.GetProperty("title").GetString());
        Assert.Equal("Legal", (await ValidateJwtAsync(renewed.AccessToken!, "identity")).GetPayloadValue<string>("department"));
        Assert.Equal("Operations", byValue.GetProperty(Enterprise).GetProperty("department").GetString());
        Assert.False(removed.TryGetProperty(Enterprise, out _));
        Assert.DoesNotContain(Enterprise, Strings(removed.GetProperty("schemas")));
        Assert.False(afterRemove.TryGetProperty("department", out _));
        Assert.Equal("Counsel", afterRemove.GetProperty("job_title").GetString());
        Assert.False(replaced.TryGetProperty("title", out _));
        Assert.Empty(afterReplace.EnumerateObject());
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}&action=user.updated", await AdminAsync());
        Assert.Contains(audit.Body.GetProperty("entries").EnumerateArray(), e =>
            e.GetProperty("details").GetProperty("changed").EnumerateArray().Select(c => c.GetString()).SequenceEqual(["attributes.department", "attributes.job_title"]));
    }

    [Fact]
    public async Task BadValues_AreScimErrors_AndKeepWhatIsStored()
    {
        var id = Id(Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Users", new Dictionary<string, object>
        {
            ["schemas"] = new[] { UserSchema, Enterprise }, ["userName"] = NewEmail(), [Enterprise] = new { department = "Finance" },
        }), HttpStatusCode.Created));

        var tooLong = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(new { op = "replace", path = $"{Enterprise}:department", value = new string('x', 1025) }));
        var number = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(new { op = "replace", path = "title", value = 42 }));
        var control = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(new { op = "replace", path = "title", value = "a\u0000b" }));

        Assert.Equal("invalidValue", ScimError(tooLong, HttpStatusCode.BadRequest));
        Assert.Equal("invalidValue", ScimError(number, HttpStatusCode.BadRequest));
        Assert.Equal("invalidValue", ScimError(control, HttpStatusCode.BadRequest));
        Assert.Equal("Finance", (await AttributesOfAsync(id)).GetProperty("department").GetString());
    }
}
