using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Identity.Policy.Ast;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Schema;
using Identity.Policy.Values;

namespace Identity.Policy.Benchmarks;

/// <summary>
/// Every request of the conformance corpus (CEDAR_CORPUS_DIR, or shared/cedar/corpus found above the working
/// directory), with policies, schemas, entities and requests parsed in setup: this measures evaluation only.
/// </summary>
[MemoryDiagnoser]
public class CorpusBenchmarks
{
    private readonly List<(PolicySet Policies, EntityStore Entities, List<Request> Requests)> _cases = [];

    // For the like-for-like comparison with cedar-wasm, whose API takes entities and context as JSON on every call.
    private readonly List<(PolicySet Policies, CedarSchema? Schema, JsonElement Entities, List<(Request Request, JsonElement Context)> Requests)> _raw = [];

    [GlobalSetup]
    public void Setup()
    {
        var dir = Environment.GetEnvironmentVariable("CEDAR_CORPUS_DIR") ?? FindCorpus()
            ?? throw new DirectoryNotFoundException("set CEDAR_CORPUS_DIR to the conformance corpus");
        foreach (var file in Directory.EnumerateFiles(dir, "*.json"))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            var root = doc.RootElement;
            var schemaJson = root.GetProperty("schema");
            CedarSchema? schema = schemaJson.ValueKind == JsonValueKind.String ? CedarSchema.Parse(schemaJson.GetString()!) : CedarSchema.FromJson(schemaJson);
            if (root.TryGetProperty("schemaForAuthorization", out var sfa) && !sfa.GetBoolean()) schema = null;
            var idMode = root.TryGetProperty("policyIds", out var ids) && ids.GetString() == "idAnnotation" ? PolicyIdMode.IdAnnotation : PolicyIdMode.Index;
            var policies = PolicySet.Parse(root.GetProperty("policies").GetString()!, idMode);
            if (root.TryGetProperty("templateLinks", out var links))
            {
                foreach (var link in links.EnumerateArray())
                {
                    var values = new Dictionary<SlotKind, EntityUid>();
                    foreach (var v in link.GetProperty("values").EnumerateObject())
                        values[v.Name == "?principal" ? SlotKind.Principal : SlotKind.Resource] = EntityJson.ParseUid(v.Value);
                    policies.Link(link.GetProperty("templateId").GetString()!, link.GetProperty("newId").GetString()!, values);
                }
            }
            var entities = EntityJson.ParseEntities(root.GetProperty("entities"), schema);
            var requests = new List<Request>();
            var raw = new List<(Request, JsonElement)>();
            foreach (var q in root.GetProperty("requests").EnumerateArray())
            {
                var action = EntityJson.ParseUid(q.GetProperty("action"));
                var request = new Request(EntityJson.ParseUid(q.GetProperty("principal")), action, EntityJson.ParseUid(q.GetProperty("resource")),
                    EntityJson.ParseContext(q.GetProperty("context"), schema, action));
                requests.Add(request);
                raw.Add((request, q.GetProperty("context").Clone()));
            }
            _cases.Add((policies, entities, requests));
            _raw.Add((policies, schema, root.GetProperty("entities").Clone(), raw));
        }
    }

    [Benchmark]
    public int EvaluateCorpus()
    {
        var allowed = 0;
        foreach (var (policies, entities, requests) in _cases)
            foreach (var request in requests)
                if (Authorizer.IsAuthorized(request, entities, policies).Decision == Decision.Allow) allowed++;
        return allowed;
    }

    /// <summary>As <see cref="EvaluateCorpus"/>, but parsing entities and context from JSON for every request.</summary>
    [Benchmark]
    public int EvaluateCorpusParsingEntities()
    {
        var allowed = 0;
        foreach (var (policies, schema, entitiesJson, requests) in _raw)
        {
            foreach (var (request, contextJson) in requests)
            {
                var entities = EntityJson.ParseEntities(entitiesJson, schema);
                var context = EntityJson.ParseContext(contextJson, schema, request.Action);
                var full = new Request(request.Principal, request.Action, request.Resource, context);
                if (Authorizer.IsAuthorized(full, entities, policies).Decision == Decision.Allow) allowed++;
            }
        }
        return allowed;
    }

    private static string? FindCorpus()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "cedar", "corpus");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
