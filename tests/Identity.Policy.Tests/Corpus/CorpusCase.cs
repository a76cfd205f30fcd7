using System.Text;
using System.Text.Json;
using Identity.Policy.Ast;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Schema;
using Identity.Policy.Validation;
using Identity.Policy.Values;

namespace Identity.Policy.Tests.Corpus;

/// <summary>
/// Runs one conformance file (format: shared/cedar/README.md) and returns the list of mismatches with the
/// expected validation verdict and per-request decision, reasons and errors.
/// </summary>
internal static class CorpusCase
{
    private static readonly object ResultsLock = new();

    public static List<string> Run(string path)
    {
        var failures = new List<string>();
        var name = Path.GetFileNameWithoutExtension(path);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;

        // A schema the engine cannot read is reported, but the requests still run (without it), so that the
        // results file stays complete.
        CedarSchema? schema = null;
        try
        {
            var schemaJson = root.GetProperty("schema");
            schema = schemaJson.ValueKind == JsonValueKind.String
                ? CedarSchema.Parse(schemaJson.GetString()!)
                : CedarSchema.FromJson(schemaJson);
        }
        catch (PolicyFormatException ex)
        {
            failures.Add($"schema: {ex.Message}");
        }

        var idMode = root.TryGetProperty("policyIds", out var pid) && pid.GetString() == "idAnnotation"
            ? PolicyIdMode.IdAnnotation
            : PolicyIdMode.Index;
        var policies = PolicySet.Parse(root.GetProperty("policies").GetString()!, idMode);
        if (root.TryGetProperty("templateLinks", out var links) && links.ValueKind == JsonValueKind.Array)
        {
            foreach (var link in links.EnumerateArray())
            {
                var values = new Dictionary<SlotKind, EntityUid>();
                foreach (var v in link.GetProperty("values").EnumerateObject())
                    values[v.Name == "?principal" ? SlotKind.Principal : SlotKind.Resource] = EntityJson.ParseUid(v.Value);
                policies.Link(link.GetProperty("templateId").GetString()!, link.GetProperty("newId").GetString()!, values);
            }
        }

        var expectedValid = root.GetProperty("shouldValidate").GetBoolean();
        var validation = schema is null ? new ValidationResult(["no schema"]) : PolicyValidator.Validate(schema, policies);
        if (validation.IsValid != expectedValid)
            failures.Add($"validation: expected {(expectedValid ? "valid" : "invalid")}, got {(validation.IsValid ? "valid" : "invalid: " + string.Join("; ", validation.Errors))}");

        var useSchema = !root.TryGetProperty("schemaForAuthorization", out var sfa) || sfa.GetBoolean();
        var authSchema = useSchema ? schema : null;
        EntityStore entities;
        try
        {
            entities = EntityJson.ParseEntities(root.GetProperty("entities"), authSchema);
        }
        catch (PolicyFormatException ex)
        {
            failures.Add($"entities: {ex.Message}");
            entities = EntityJson.ParseEntities(root.GetProperty("entities"));
        }

        var resultsPath = Environment.GetEnvironmentVariable("CEDAR_RESULTS");
        var results = resultsPath is null ? null : new StringBuilder();
        var index = 0;
        foreach (var req in root.GetProperty("requests").EnumerateArray())
        {
            var i = index++;
            var action = EntityJson.ParseUid(req.GetProperty("action"));
            RecordValue context;
            try
            {
                context = EntityJson.ParseContext(req.GetProperty("context"), authSchema, action);
            }
            catch (PolicyFormatException ex)
            {
                failures.Add($"request {i}: context: {ex.Message}");
                context = EntityJson.ParseContext(req.GetProperty("context"), null, action);
            }
            var request = new Request(EntityJson.ParseUid(req.GetProperty("principal")), action, EntityJson.ParseUid(req.GetProperty("resource")), context);
            if (schema is not null && req.TryGetProperty("validateRequest", out var vr) && vr.GetBoolean())
            {
                var requestErrors = RequestValidator.Validate(schema, request);
                if (requestErrors.Count > 0) failures.Add($"request {i}: fails request validation: {string.Join("; ", requestErrors)}");
            }
            var result = Authorizer.IsAuthorized(request, entities, policies);
            var reasons = result.Reasons.ToHashSet();
            var errors = result.Errors.Select(e => e.PolicyId).ToHashSet();
            results?.Append(JsonSerializer.Serialize(new
            {
                file = name,
                request = i,
                decision = result.Decision == Decision.Allow ? "allow" : "deny",
                reason = reasons.Order(StringComparer.Ordinal).ToArray(),
                errors = errors.Order(StringComparer.Ordinal).ToArray(),
            })).Append('\n');

            var expectedDecision = req.GetProperty("decision").GetString();
            var actualDecision = result.Decision == Decision.Allow ? "allow" : "deny";
            if (expectedDecision != actualDecision)
                failures.Add($"request {i}: expected {expectedDecision}, got {actualDecision} ({Describe(result)})");
            if (req.TryGetProperty("reason", out var reasonJson) && reasonJson.ValueKind == JsonValueKind.Array)
            {
                var expected = reasonJson.EnumerateArray().Select(x => x.GetString()!).ToHashSet();
                var subset = req.TryGetProperty("reasonIsSubset", out var sub) && sub.GetBoolean();
                if (subset ? !expected.IsSubsetOf(reasons) : !expected.SetEquals(reasons))
                    failures.Add($"request {i}: expected reasons [{string.Join(", ", expected)}], got [{string.Join(", ", reasons)}]");
            }
            if (req.TryGetProperty("errors", out var errorsJson) && errorsJson.ValueKind == JsonValueKind.Array)
            {
                var expected = errorsJson.EnumerateArray().Select(x => x.GetString()!).ToHashSet();
                if (!expected.SetEquals(errors))
                    failures.Add($"request {i}: expected errors [{string.Join(", ", expected)}], got [{Describe(result)}]");
            }
            if (req.TryGetProperty("numErrors", out var numErrors) && numErrors.ValueKind == JsonValueKind.Number && numErrors.GetInt32() != errors.Count)
                failures.Add($"request {i}: expected {numErrors.GetInt32()} errors, got {errors.Count}");
        }
        if (results is not null)
        {
            lock (ResultsLock) File.AppendAllText(resultsPath!, results.ToString());
        }
        return failures;
    }

    private static string Describe(AuthorizationResult r) =>
        string.Join(", ", r.Errors.Select(e => $"{e.PolicyId}: {e.Message}"));
}
