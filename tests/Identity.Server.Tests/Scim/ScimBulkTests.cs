using System.Net;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Scim;

public sealed class SqliteScimBulkTests(SqliteServer server) : ScimBulkTests<SqliteServer>(server);
public sealed class PostgreSqlScimBulkTests(PostgreSqlServer server) : ScimBulkTests<PostgreSqlServer>(server);

/// <summary>
/// SCIM Bulk (RFC 7644 §3.7): several changes in one request, each answered as it would be alone, with bulkId
/// references to what earlier operations made, failOnErrors, and the limits ServiceProviderConfig announces.
/// </summary>
public abstract class ScimBulkTests<TFactory>(TFactory factory) : ScimTestsBase<TFactory>(factory) where TFactory : ServerFactory
{
    const string BulkRequest = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    const string BulkResponse = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

    Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> BulkAsync(object[] operations, int? failOnErrors = null) =>
        ScimAsync(HttpMethod.Post, "/scim/v2/Bulk", failOnErrors is null
            ? new { schemas = new[] { BulkRequest }, Operations = operations }
            : new { schemas = new[] { BulkRequest }, failOnErrors, Operations = operations });

    static List<JsonElement> Operations(JsonElement response) => [.. response.GetProperty("Operations").EnumerateArray()];

    /// <summary>A new user and a new group with that user in it, in one request: the group names the user by its bulkId.</summary>
    [Fact]
    public async Task Bulk_MakesAUserAndAGroupWithIt_ThroughBulkIdReferences()
    {
        var email = NewEmail("bulk");
        var groupName = $"bulk group {Guid.NewGuid():N}";

        var answer = await BulkAsync([
            new { method = "POST", path = "/Users", bulkId = "alice", data = new { schemas = new[] { UserSchema }, userName = email } },
            new { method = "POST", path = "/Groups", bulkId = "team", data = new { schemas = new[] { GroupSchema }, displayName = groupName,
                members = new[] { new { value = "bulkId:alice" } } } },
            new { method = "PATCH", path = "/Users/bulkId:alice", data = new { schemas = new[] { PatchSchema },
                Operations = new[] { new { op = "replace", path = "displayName", value = "Alice Bulk" } } } },
        ]);
        var body = Ok(answer);
        var results = Operations(body);
        var userId = results[0].GetProperty("location").GetString()!.Split('/')[^1];
        var group = Ok(await ScimAsync(HttpMethod.Get, new Uri(results[1].GetProperty("location").GetString()!).AbsolutePath));
        var user = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{userId}"));

        Assert.Equal([BulkResponse], Strings(body.GetProperty("schemas")));
        Assert.Equal(["201", "201", "200"], results.Select(r => r.GetProperty("status").GetString()));
        Assert.Equal(["alice", "team", null], results.Select(r => r.TryGetProperty("bulkId", out var id) ? id.GetString() : null));
        Assert.False(string.IsNullOrEmpty(results[0].GetProperty("version").GetString()));
        Assert.Equal([userId], group.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("value").GetString()));
        Assert.Equal(email, user.GetProperty("userName").GetString());
        Assert.Equal("Alice Bulk", user.GetProperty("displayName").GetString());
    }

    /// <summary>
    /// A failing operation is answered with its own SCIM error and the others still run, until failOnErrors; a
    /// reference to an operation that failed fails too; what succeeded stays.
    /// </summary>
    [Fact]
    public async Task Bulk_ErrorsAreAnsweredPerOperation_UntilFailOnErrors()
    {
        var taken = NewEmail("taken");
        await CreateScimUserAsync(taken);
        var kept = NewEmail("kept");
        var never = NewEmail("never");

        var results = Operations(Ok(await BulkAsync([
            new { method = "POST", path = "/Users", bulkId = "dup", data = new { schemas = new[] { UserSchema }, userName = taken } },
            new { method = "POST", path = "/Users", bulkId = "ok", data = new { schemas = new[] { UserSchema }, userName = kept } },
            new { method = "PATCH", path = "/Users/bulkId:dup", data = new { schemas = new[] { PatchSchema },
                Operations = new[] { new { op = "replace", path = "active", value = false } } } },
            new { method = "POST", path = "/Users", bulkId = "late", data = new { schemas = new[] { UserSchema }, userName = never } },
        ], failOnErrors: 2)));
        var keptFound = Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Uri.EscapeDataString($"userName eq \"{kept}\"")}")));
        var neverFound = Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Uri.EscapeDataString($"userName eq \"{never}\"")}")));

        Assert.Equal(3, results.Count);
        Assert.Equal("409", results[0].GetProperty("status").GetString());
        Assert.Equal("uniqueness", results[0].GetProperty("response").GetProperty("scimType").GetString());
        Assert.Equal("201", results[1].GetProperty("status").GetString());
        Assert.Equal("409", results[2].GetProperty("status").GetString());
        Assert.Contains("bulkId:dup", results[2].GetProperty("response").GetProperty("detail").GetString());
        Assert.Single(keptFound);
        Assert.Empty(neverFound);
    }

    [Fact]
    public async Task Bulk_BadRequests_AreScimErrors_AndConfigAnnouncesTheLimits()
    {
        var config = Ok(await ScimAsync(HttpMethod.Get, "/scim/v2/ServiceProviderConfig"));
        var noOperations = await ScimAsync(HttpMethod.Post, "/scim/v2/Bulk", new { schemas = new[] { BulkRequest } });
        var tooMany = await BulkAsync([.. Enumerable.Range(0, 1001).Select(i => (object)new { method = "DELETE", path = $"/Users/{i}" })]);
        var results = Operations(Ok(await BulkAsync([
            new { method = "GET", path = "/Users" },
            new { method = "POST", path = "/Users", data = new { userName = NewEmail() } },
            new { method = "POST", path = "/Bulk", bulkId = "again", data = new { } },
            new { method = "DELETE", path = "/Users/no-such-user" },
            new { method = "PUT", path = "/Nothing/1", data = new { } },
        ])));

        Assert.True(config.GetProperty("bulk").GetProperty("supported").GetBoolean());
        Assert.Equal(1000, config.GetProperty("bulk").GetProperty("maxOperations").GetInt32());
        Assert.Equal(1024 * 1024, config.GetProperty("bulk").GetProperty("maxPayloadSize").GetInt32());
        Assert.Equal("invalidSyntax", ScimError(noOperations, HttpStatusCode.BadRequest));
        Assert.Null(ScimError(tooMany, HttpStatusCode.RequestEntityTooLarge));
        Assert.Equal(["400", "400", "400", "404", "404"], results.Select(r => r.GetProperty("status").GetString()));
        Assert.All(results, r => Assert.Equal(ErrorSchema, r.GetProperty("response").GetProperty("schemas")[0].GetString()));
    }
}
