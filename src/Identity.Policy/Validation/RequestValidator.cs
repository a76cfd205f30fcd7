using Identity.Policy.Evaluation;
using Identity.Policy.Schema;
using Identity.Policy.Values;

namespace Identity.Policy.Validation;

/// <summary>
/// Checks a request against the schema: the action is declared and applies to the principal and resource types,
/// and the context has exactly the declared attributes at their declared types.
/// </summary>
public static class RequestValidator
{
    public static IReadOnlyList<string> Validate(CedarSchema schema, Request request)
    {
        var errors = new List<string>();
        if (!schema.Actions.TryGetValue(request.Action, out var action))
        {
            errors.Add($"action {request.Action} is not declared in the schema");
            return errors;
        }
        if (!action.Principals.Contains(request.Principal.Type))
            errors.Add($"principal type `{request.Principal.Type}` is not valid for action {request.Action}");
        else if (!schema.IsKnownEntity(request.Principal))
            errors.Add($"principal {request.Principal} is not a declared entity");
        if (!action.Resources.Contains(request.Resource.Type))
            errors.Add($"resource type `{request.Resource.Type}` is not valid for action {request.Action}");
        else if (!schema.IsKnownEntity(request.Resource))
            errors.Add($"resource {request.Resource} is not a declared entity");
        if (!ValueConformance.Conforms(schema, request.Context, action.Context))
            errors.Add($"context does not conform to the schema of action {request.Action}");
        return errors;
    }
}

/// <summary>Whether a value has a schema type (records must have all required and no undeclared attributes).</summary>
internal static class ValueConformance
{
    public static bool Conforms(CedarSchema schema, Value v, SchemaType t) => (v, t) switch
    {
        (BoolValue, BoolSchemaType) => true,
        (LongValue, LongSchemaType) => true,
        (StringValue, StringSchemaType) => true,
        (EntityUid uid, EntitySchemaType e) => uid.Type == e.Name && schema.IsKnownEntity(uid),
        (SetValue s, SetSchemaType st) => s.Items.All(i => Conforms(schema, i, st.Element)),
        (RecordValue r, RecordSchemaType rt) => RecordConforms(schema, r, rt),
        (_, ExtensionSchemaType ext) => v.TypeName == ext.Name,
        _ => false,
    };

    private static bool RecordConforms(CedarSchema schema, RecordValue r, RecordSchemaType rt)
    {
        foreach (var (k, a) in rt.Attributes)
        {
            if (r.TryGet(k, out var v))
            {
                if (!Conforms(schema, v, a.Type)) return false;
            }
            else if (a.Required)
            {
                return false;
            }
        }
        foreach (var k in r.Attributes.Keys)
            if (!rt.Attributes.ContainsKey(k)) return false;
        return true;
    }
}
