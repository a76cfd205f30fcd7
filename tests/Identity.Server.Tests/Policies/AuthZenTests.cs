using System.Net;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Policies;

/// <summary>The AuthZEN 1.0 endpoints give the same decisions as /v1/authorize.</summary>
public class AuthZenTests(SqliteServer factory) : PolicyServerTests<SqliteServer>(factory)
{
    [Fact]
    public async Task AuthZen_Evaluation_DecidesWithTheSamePolicies()
    {
        var member = await CreateUserInAsync("zen.example");
        var token = await ServiceTokenAsync();

        var answer = await ApiAsync(HttpMethod.Post, "/access/v1/evaluation", token, new
        {
            subject = new { type = "user", id = member },
            action = new { name = "read" },
            resource = new { type = "document", id = "handbook", properties = new { organization_domain = "zen.example" } },
        });

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.True(answer.Body.GetProperty("decision").GetBoolean());
        Assert.Equal("organization-members-read", answer.Body.GetProperty("context").GetProperty("reasons")[0].GetString());
    }

    [Fact]
    public async Task AuthZen_Batch_InheritsDefaultsAndHonoursTheSemantic()
    {
        var member = await CreateUserInAsync("zenbatch.example");
        var outsider = await CreateUserInAsync("outsider.example");
        var token = await ServiceTokenAsync();
        object Batch(string? semantic) => new
        {
            subject = new { type = "user", id = member },
            resource = new { type = "document", id = "plan", properties = new { organization_domain = "zenbatch.example" } },
            options = semantic is null ? null : new { evaluations_semantic = semantic },
            evaluations = new object[]
            {
                new { action = new { name = "read" } },
                new { action = new { name = "delete" } },
                new { action = new { name = "read" }, subject = new { type = "user", id = outsider } },
            },
        };

        var all = await ApiAsync(HttpMethod.Post, "/access/v1/evaluations", token, Batch(null));
        var firstDeny = await ApiAsync(HttpMethod.Post, "/access/v1/evaluations", token, Batch("deny_on_first_deny"));
        var bad = await ApiAsync(HttpMethod.Post, "/access/v1/evaluations", token, new { evaluations = new[] { new { action = new { name = "read" } } } });

        Assert.Equal([true, false, false], all.Body.GetProperty("evaluations").EnumerateArray().Select(e => e.GetProperty("decision").GetBoolean()));
        Assert.Equal([true, false], firstDeny.Body.GetProperty("evaluations").EnumerateArray().Select(e => e.GetProperty("decision").GetBoolean()));
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(bad));
    }

    [Fact]
    public async Task AuthZen_MetadataAndAnonymous()
    {
        var metadata = await ApiAsync(HttpMethod.Get, "/.well-known/authzen-configuration");
        var anonymous = await ApiAsync(HttpMethod.Post, "/access/v1/evaluation", body: new { });

        Assert.Equal(HttpStatusCode.OK, metadata.Status);
        Assert.EndsWith("/access/v1/evaluations", metadata.Body.GetProperty("access_evaluations_endpoint").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
        Assert.Equal("UNAUTHORIZED", ErrorCode(anonymous));
    }
}
