using System.Net;
using System.Text;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Policies;

public sealed class SqlitePoliciesApiTests(SqliteServer server) : PoliciesApiTests<SqliteServer>(server);
public sealed class PostgreSqlPoliciesApiTests(PostgreSqlServer server) : PoliciesApiTests<PostgreSqlServer>(server);

/// <summary>/api/v1/policies: writes are validated and apply to the next decision; the test bench runs corpus files.</summary>
public abstract class PoliciesApiTests<TFactory>(TFactory factory) : PolicyServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    static object ShareRequest(string principal, params string[] groups) => new
    {
        principal = new { type = "User", id = principal },
        action = new { type = "Action", id = "share" },
        resource = new { type = "Document", id = "org-crud-doc-1" },
        context = new { group_memberships = groups },
    };

    [Fact]
    public async Task Policies_CreateUpdateDelete_ApplyToTheNextDecision()
    {
        var admin = await AdminAsync();
        var member = await CreateUserInAsync("crud.example");
        Assert.Equal("Deny", (await AuthorizeAsync(ShareRequest(member, "engineering-team"))).Decision);

        var created = await ApiAsync(HttpMethod.Post, "/api/v1/policies", admin, new
        {
            id = "engineers-share",
            description = "Engineers share their organization's documents",
            policy = """
                permit (principal is User, action == Action::"share", resource is Document)
                when { context has group_memberships && context.group_memberships.contains("engineering-team") && principal has organization && resource in principal.organization };
                """,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        Assert.True(created.Body.GetProperty("enabled").GetBoolean());
        var allowed = await AuthorizeAsync(ShareRequest(member, "engineering-team"));
        var otherGroup = await AuthorizeAsync(ShareRequest(member, "sales"));

        var disabled = await ApiAsync(HttpMethod.Put, "/api/v1/policies/engineers-share", admin, new { enabled = false });
        var whileDisabled = await AuthorizeAsync(ShareRequest(member, "engineering-team"));
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Put, "/api/v1/policies/engineers-share", admin, new { enabled = true })).Status);
        var deleted = await ApiAsync(HttpMethod.Delete, "/api/v1/policies/engineers-share", admin);
        var afterDelete = await AuthorizeAsync(ShareRequest(member, "engineering-team"));
        var gone = await ApiAsync(HttpMethod.Get, "/api/v1/policies/engineers-share", admin);

        Assert.Equal(("Allow", "engineers-share"), (allowed.Decision, allowed.Reasons.Single()));
        Assert.Equal("Deny", otherGroup.Decision);
        Assert.False(disabled.Body.GetProperty("enabled").GetBoolean());
        Assert.Equal("Deny", whileDisabled.Decision);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal("Deny", afterDelete.Decision);
        Assert.Equal("NOT_FOUND", ErrorCode(gone));
        // Every change is in the audit log.
        var audit = await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=100", admin);
        var changes = audit.Body.GetProperty("entries").EnumerateArray()
            .Where(e => e.GetProperty("action").GetString()!.StartsWith("policy.") && e.GetProperty("details").GetProperty("policy").GetString() == "engineers-share")
            .Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Equal(["policy.deleted", "policy.updated", "policy.updated", "policy.created"], changes);
    }

    [Fact]
    public async Task Policies_BadCedar_Returns400WithPositionAndChangesNothing()
    {
        var admin = await AdminAsync();
        var before = await ApiAsync(HttpMethod.Get, "/api/v1/policies", admin);

        var syntax = await ApiAsync(HttpMethod.Post, "/api/v1/policies", admin, new { id = "broken", policy = "permit (principal, action, resource)\nwhen { principal. };" });
        var unknownAttribute = await ApiAsync(HttpMethod.Post, "/api/v1/policies", admin,
            new { id = "mistyped", policy = "permit (principal is User, action, resource) when { principal.department == \"x\" };" });
        var twoPolicies = await ApiAsync(HttpMethod.Post, "/api/v1/policies", admin,
            new { id = "two", policy = "permit (principal, action, resource); forbid (principal, action, resource);" });
        var badUpdate = await ApiAsync(HttpMethod.Put, "/api/v1/policies/admins-all", admin, new { policy = "permit (" });
        var after = await ApiAsync(HttpMethod.Get, "/api/v1/policies", admin);

        Assert.Equal(HttpStatusCode.BadRequest, syntax.Status);
        Assert.Equal("INVALID_POLICY", ErrorCode(syntax));
        var details = syntax.Body.GetProperty("error").GetProperty("details");
        Assert.Equal(2, details.GetProperty("line").GetInt32());
        Assert.True(details.GetProperty("column").GetInt32() > 0);
        Assert.False(string.IsNullOrEmpty(details.GetProperty("message").GetString()));
        Assert.Equal("INVALID_POLICY", ErrorCode(unknownAttribute));
        Assert.NotEmpty(unknownAttribute.Body.GetProperty("error").GetProperty("details").GetProperty("errors").EnumerateArray());
        Assert.Equal("INVALID_POLICY", ErrorCode(twoPolicies));
        Assert.Equal("INVALID_POLICY", ErrorCode(badUpdate));
        Assert.Equal(before.Body.ToString(), after.Body.ToString());
    }

    [Fact]
    public async Task Policies_ShippedDefaults_AreListedAndValid()
    {
        var admin = await AdminAsync();

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/policies", admin);
        var schema = await ApiAsync(HttpMethod.Get, "/api/v1/policies/schema", admin);

        var ids = list.Body.GetProperty("policies").EnumerateArray().Select(p => p.GetProperty("id").GetString()).ToList();
        Assert.Superset(new HashSet<string?> { "tenant-isolation", "organization-members-read", "admins-all" }, ids.ToHashSet());
        Assert.Contains("entity User", schema.Body.GetProperty("schema").GetString());
        // Each default, written back unchanged, passes the same validation as any write.
        foreach (var policy in list.Body.GetProperty("policies").EnumerateArray().Where(p => p.GetProperty("id").GetString() is "tenant-isolation" or "organization-members-read" or "admins-all"))
            Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Put, $"/api/v1/policies/{policy.GetProperty("id").GetString()}", admin,
                new { policy = policy.GetProperty("policy").GetString() })).Status);
    }

    [Fact]
    public async Task Policies_WithoutPermission_Forbidden()
    {
        var user = await LoginAsync(await CreateUserAsync());

        var list = await ApiAsync(HttpMethod.Get, "/api/v1/policies", user);
        var create = await ApiAsync(HttpMethod.Post, "/api/v1/policies", user, new { id = "sneaky", policy = "permit (principal, action, resource);" });
        var anonymous = await ApiAsync(HttpMethod.Get, "/api/v1/policies");

        Assert.Equal(HttpStatusCode.Forbidden, list.Status);
        Assert.Equal("FORBIDDEN", ErrorCode(create));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
    }

    [Theory]
    [InlineData("example-document_cloud")]
    [InlineData("example-hotel_chains-templated")]
    [InlineData("cli-sample1-1")]
    public async Task Evaluate_CorpusFile_MatchesItsExpectations(string name)
    {
        var admin = await AdminAsync();
        var path = Path.Combine(CorpusDirectory(), name + ".json");
        using var file = JsonDocument.Parse(File.ReadAllBytes(path));

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/policies/evaluate", admin,
            new StringContent(file.RootElement.GetRawText(), Encoding.UTF8, "application/json"));

        Assert.True(answer.Status == HttpStatusCode.OK, answer.Body.ToString());
        Assert.Equal(file.RootElement.GetProperty("shouldValidate").GetBoolean(), answer.Body.GetProperty("validation").GetProperty("valid").GetBoolean());
        var expected = file.RootElement.GetProperty("requests").EnumerateArray().ToList();
        var results = answer.Body.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(expected.Count, results.Count);
        foreach (var (want, got) in expected.Zip(results))
        {
            Assert.Equal(want.GetProperty("decision").GetString(), got.GetProperty("decision").GetString());
            if (want.TryGetProperty("reason", out var reason) && reason.ValueKind == JsonValueKind.Array)
                Assert.Equal(reason.EnumerateArray().Select(r => r.GetString()).Order(), got.GetProperty("reason").EnumerateArray().Select(r => r.GetString()).Order());
        }
    }

    [Fact]
    public async Task Evaluate_BadPolicies_Returns400WithPosition()
    {
        var admin = await AdminAsync();

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/policies/evaluate", admin, new { policies = "permit (principal,\n action resource);", requests = Array.Empty<object>() });
        var noPolicies = await ApiAsync(HttpMethod.Post, "/api/v1/policies/evaluate", admin, new { requests = Array.Empty<object>() });
        var requestsNotAList = await ApiAsync(HttpMethod.Post, "/api/v1/policies/evaluate", admin, new { policies = "permit (principal, action, resource);", requests = "x" });
        var requestWithoutPrincipal = await ApiAsync(HttpMethod.Post, "/api/v1/policies/evaluate", admin,
            new { policies = "permit (principal, action, resource);", requests = new[] { new { action = new { type = "Action", id = "read" } } } });

        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        Assert.Equal("INVALID_REQUEST", ErrorCode(requestsNotAList));
        Assert.Equal("INVALID_REQUEST", ErrorCode(requestWithoutPrincipal));
        Assert.Equal(2, answer.Body.GetProperty("error").GetProperty("details").GetProperty("line").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, noPolicies.Status);
    }

    static string CorpusDirectory()
    {
        var fromEnv = Environment.GetEnvironmentVariable("CEDAR_CORPUS_DIR");
        if (!string.IsNullOrEmpty(fromEnv))
            return Path.GetFullPath(fromEnv);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Path.Combine(dir.FullName, "shared", "cedar", "corpus") is var candidate && Directory.Exists(candidate))
                return candidate;
        throw new InvalidOperationException("shared/cedar/corpus not found: set CEDAR_CORPUS_DIR");
    }
}
