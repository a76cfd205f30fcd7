using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Values;

namespace Identity.Policy.Benchmarks;

/// <summary>
/// A typical authorization: 36 policies (30 permits scoped by group, action and folder, 6 forbids with conditions),
/// a principal three groups deep and a resource two folders deep. Policies and entities are parsed once.
/// </summary>
[MemoryDiagnoser]
public class AuthorizationBenchmarks
{
    private PolicySet _policies = null!;
    private EntityStore _entities = null!;
    private Request _request = null!;

    [GlobalSetup]
    public void Setup()
    {
        var text = new StringBuilder();
        for (var i = 0; i < 30; i++)
        {
            text.AppendLine($$"""
                permit(principal in Group::"g{{i % 5}}", action == Action::"a{{i}}", resource in Folder::"f{{i % 3}}")
                when { principal.level >= {{i % 4}} && resource.owner != principal && context.ip.isInRange(ip("10.0.0.0/8")) };
                """);
            if (i % 5 == 0)
                text.AppendLine("forbid(principal, action, resource) when { principal has suspended && principal.suspended } unless { context.admin };");
        }
        _policies = PolicySet.Parse(text.ToString());
        using var entities = JsonDocument.Parse("""
            [{"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 3, "suspended": false}, "parents": [{"type": "Group", "id": "g1"}]},
             {"uid": {"type": "Group", "id": "g1"}, "attrs": {}, "parents": [{"type": "Group", "id": "g2"}]},
             {"uid": {"type": "Group", "id": "g2"}, "attrs": {}, "parents": [{"type": "Group", "id": "g3"}]},
             {"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "bob"}}}, "parents": [{"type": "Folder", "id": "f1"}]},
             {"uid": {"type": "Folder", "id": "f1"}, "attrs": {}, "parents": [{"type": "Folder", "id": "f0"}]}]
            """);
        _entities = EntityJson.ParseEntities(entities.RootElement);
        var action = new EntityUid("Action", "a1");
        using var context = JsonDocument.Parse("""{"ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}}, "admin": false}""");
        _request = new Request(new EntityUid("User", "alice"), action, new EntityUid("Doc", "d"), EntityJson.ParseContext(context.RootElement, null, action));
    }

    [Benchmark]
    public AuthorizationResult Authorize() => Authorizer.IsAuthorized(_request, _entities, _policies);
}
