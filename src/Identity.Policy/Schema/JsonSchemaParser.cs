using System.Text.Json;
using Identity.Policy.Values;

namespace Identity.Policy.Schema;

/// <summary>Reader for the JSON schema format: <c>{ "Namespace": { entityTypes, actions, commonTypes } }</c>.</summary>
internal static class JsonSchemaParser
{
    public static CedarSchema Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new PolicyFormatException("a JSON schema must be an object");
        var builder = new SchemaBuilder();
        foreach (var nsProp in root.EnumerateObject())
        {
            var ns = nsProp.Name;
            var body = nsProp.Value;
            if (body.TryGetProperty("commonTypes", out var commons))
                foreach (var c in commons.EnumerateObject()) builder.AddCommonType(ns, c.Name, ParseType(c.Value, ns));
            if (body.TryGetProperty("entityTypes", out var entities))
            {
                foreach (var e in entities.EnumerateObject())
                {
                    var def = e.Value;
                    var memberOf = new List<RawName>();
                    if (def.TryGetProperty("memberOfTypes", out var mot))
                        foreach (var t in mot.EnumerateArray()) memberOf.Add(new RawName(t.GetString()!, ns, EntityOnly: true));
                    RawType? shape = def.TryGetProperty("shape", out var s) ? ParseType(s, ns) : null;
                    RawType? tags = def.TryGetProperty("tags", out var tg) ? ParseType(tg, ns) : null;
                    List<string>? enumIds = null;
                    if (def.TryGetProperty("enum", out var en))
                    {
                        enumIds = [];
                        foreach (var id in en.EnumerateArray()) enumIds.Add(id.GetString()!);
                    }
                    builder.AddEntityType(ns, e.Name, memberOf, shape, tags, enumIds);
                }
            }
            if (body.TryGetProperty("actions", out var actions))
            {
                var actionType = SchemaBuilder.Qualify(ns, "Action");
                foreach (var a in actions.EnumerateObject())
                {
                    var def = a.Value;
                    var memberOf = new List<EntityUid>();
                    if (def.TryGetProperty("memberOf", out var mo))
                    {
                        foreach (var m in mo.EnumerateArray())
                        {
                            var type = m.TryGetProperty("type", out var t) ? t.GetString()! : actionType;
                            memberOf.Add(new EntityUid(type, m.GetProperty("id").GetString()!));
                        }
                    }
                    List<RawName>? principals = null, resources = null;
                    RawType? context = null;
                    if (def.TryGetProperty("appliesTo", out var applies) && applies.ValueKind == JsonValueKind.Object)
                    {
                        if (applies.TryGetProperty("principalTypes", out var pt))
                            principals = [.. pt.EnumerateArray().Select(x => new RawName(x.GetString()!, ns, EntityOnly: true))];
                        if (applies.TryGetProperty("resourceTypes", out var rt))
                            resources = [.. rt.EnumerateArray().Select(x => new RawName(x.GetString()!, ns, EntityOnly: true))];
                        if (applies.TryGetProperty("context", out var ctx)) context = ParseType(ctx, ns);
                    }
                    builder.AddAction(ns, new EntityUid(actionType, a.Name), memberOf, principals, resources, context);
                }
            }
        }
        return builder.Build();
    }

    private static RawType ParseType(JsonElement json, string ns)
    {
        var type = json.GetProperty("type").GetString()!;
        switch (type)
        {
            case "Long": return new RawBuiltin(LongSchemaType.Instance);
            case "String": return new RawBuiltin(StringSchemaType.Instance);
            case "Boolean": return new RawBuiltin(BoolSchemaType.Instance);
            case "Set": return new RawSet(ParseType(json.GetProperty("element"), ns));
            case "Entity": return new RawName(json.GetProperty("name").GetString()!, ns, EntityOnly: true);
            case "Extension": return new RawBuiltin(new ExtensionSchemaType(json.GetProperty("name").GetString()!));
            case "EntityOrCommon": return new RawName(json.GetProperty("name").GetString()!, ns);
            case "Record":
            {
                var attrs = new List<(string, RawType, bool)>();
                if (json.TryGetProperty("attributes", out var a))
                    foreach (var p in a.EnumerateObject())
                        attrs.Add((p.Name, ParseType(p.Value, ns), !p.Value.TryGetProperty("required", out var r) || r.GetBoolean()));
                return new RawRecord(attrs);
            }
            default:
                return new RawName(type, ns);
        }
    }
}
