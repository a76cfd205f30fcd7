using System.Text.Json;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Schema;
using Identity.Policy.Values;

namespace Identity.Policy.Tests;

internal static class TestSupport
{
    public static EntityUid Uid(string type, string id) => new(type, id);

    public static EntityStore LoadEntities(string json, CedarSchema? schema = null)
    {
        using var doc = JsonDocument.Parse(json);
        return EntityJson.ParseEntities(doc.RootElement, schema);
    }

    public static RecordValue Context(string json, CedarSchema? schema = null, EntityUid? action = null)
    {
        using var doc = JsonDocument.Parse(json);
        return EntityJson.ParseContext(doc.RootElement, schema, action ?? Uid("Action", "view"));
    }

    public static AuthorizationResult Authorize(string policies, EntityUid principal, EntityUid action, EntityUid resource,
        EntityStore? entities = null, RecordValue? context = null) =>
        Authorizer.IsAuthorized(new Request(principal, action, resource, context), entities ?? EntityStore.Empty, PolicySet.Parse(policies));

    /// <summary>Evaluates a single expression against an empty request.</summary>
    public static Value Eval(string expression, EntityStore? entities = null)
    {
        var expr = Parsing.PolicyParser.ParseExpression(expression);
        var request = new Request(Uid("User", "alice"), Uid("Action", "view"), Uid("Doc", "d"));
        return expr.Evaluate(new EvaluationContext(request, entities ?? EntityStore.Empty));
    }
}
