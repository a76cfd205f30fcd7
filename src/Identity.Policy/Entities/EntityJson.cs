using System.Text.Json;
using Identity.Policy.Evaluation;
using Identity.Policy.Extensions;
using Identity.Policy.Schema;
using Identity.Policy.Values;

namespace Identity.Policy.Entities;

/// <summary>
/// Reads Cedar's JSON formats for entities, entity references and values. With a schema, values are read at their
/// declared types: a string where the schema expects an extension type is that type's literal (e.g. "0.6" as a
/// decimal) and <c>{"type","id"}</c> where it expects an entity is a reference.
/// </summary>
public static class EntityJson
{
    /// <summary>
    /// Parses an entities array. With a schema, attributes and tags are read at their declared types and the
    /// schema's actions (with their groups) are added unless the array already defines them.
    /// </summary>
    public static EntityStore ParseEntities(JsonElement array, CedarSchema? schema = null)
    {
        try
        {
            return ParseEntityList(array, schema);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException)
        {
            // A missing or mistyped JSON field: report it as malformed input like every other format error.
            throw new PolicyFormatException($"malformed entities JSON: {ex.Message}");
        }
    }

    private static EntityStore ParseEntityList(JsonElement array, CedarSchema? schema)
    {
        if (array.ValueKind != JsonValueKind.Array) throw new PolicyFormatException("entities must be a JSON array");
        var entities = new List<Entity>();
        var seen = new HashSet<EntityUid>();
        foreach (var item in array.EnumerateArray())
        {
            var uid = ParseUid(item.GetProperty("uid"));
            EntityTypeDefinition? def = null;
            schema?.EntityTypes.TryGetValue(uid.Type, out def);
            var attrs = new Dictionary<string, Value>(StringComparer.Ordinal);
            if (item.TryGetProperty("attrs", out var attrsJson) && attrsJson.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in attrsJson.EnumerateObject())
                {
                    SchemaType? t = null;
                    if (def is not null && def.Attributes.Attributes.TryGetValue(p.Name, out var at)) t = at.Type;
                    attrs[p.Name] = ParseValue(p.Value, t);
                }
            }
            var parents = new List<EntityUid>();
            if (item.TryGetProperty("parents", out var parentsJson) && parentsJson.ValueKind == JsonValueKind.Array)
                foreach (var p in parentsJson.EnumerateArray()) parents.Add(ParseUid(p));
            Dictionary<string, Value>? tags = null;
            if (item.TryGetProperty("tags", out var tagsJson) && tagsJson.ValueKind == JsonValueKind.Object)
            {
                tags = new Dictionary<string, Value>(StringComparer.Ordinal);
                foreach (var p in tagsJson.EnumerateObject()) tags[p.Name] = ParseValue(p.Value, def?.Tags);
            }
            entities.Add(new Entity(uid, attrs, parents, tags));
            seen.Add(uid);
        }
        if (schema is not null)
        {
            foreach (var action in schema.Actions.Values)
                if (!seen.Contains(action.Uid)) entities.Add(new Entity(action.Uid, parents: action.MemberOf));
        }
        return new EntityStore(entities);
    }

    /// <summary><c>{"type": "T", "id": "i"}</c>, optionally wrapped as <c>{"__entity": {...}}</c>.</summary>
    public static EntityUid ParseUid(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object) throw new PolicyFormatException($"expected an entity reference, found {json.ValueKind}");
        if (json.TryGetProperty("__entity", out var inner)) json = inner;
        if (!json.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
            || !json.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String)
            throw new PolicyFormatException("an entity reference needs string fields `type` and `id`");
        return new EntityUid(type.GetString()!, id.GetString()!);
    }

    /// <summary>Parses a request context (a record) at the action's declared context type, if a schema is given.</summary>
    public static RecordValue ParseContext(JsonElement json, CedarSchema? schema, EntityUid action)
    {
        if (json.ValueKind == JsonValueKind.Undefined || json.ValueKind == JsonValueKind.Null) return RecordValue.Empty;
        SchemaType? type = null;
        if (schema is not null && schema.Actions.TryGetValue(action, out var def)) type = def.Context;
        return ParseValue(json, type) as RecordValue ?? throw new PolicyFormatException("the context must be a record");
    }

    /// <summary>Parses a value, guided by <paramref name="expected"/> when given.</summary>
    public static Value ParseValue(JsonElement json, SchemaType? expected = null)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.True: return BoolValue.True;
            case JsonValueKind.False: return BoolValue.False;
            case JsonValueKind.Number:
                return json.TryGetInt64(out var l) ? new LongValue(l) : throw new PolicyFormatException($"`{json.GetRawText()}` is not a 64-bit integer");
            case JsonValueKind.String:
            {
                var s = json.GetString()!;
                if (expected is ExtensionSchemaType ext)
                {
                    var ctor = ExtFunctions.ConstructorFor(ext.Name);
                    return ExtFunctions.Construct(ctor, s) ?? throw new PolicyFormatException($"invalid {ext.Name} literal \"{s}\"");
                }
                return new StringValue(s);
            }
            case JsonValueKind.Array:
            {
                var element = (expected as SetSchemaType)?.Element;
                var items = new List<Value>();
                foreach (var item in json.EnumerateArray()) items.Add(ParseValue(item, element));
                return SetValue.Of(items);
            }
            case JsonValueKind.Object:
                return ParseObject(json, expected);
            default:
                throw new PolicyFormatException($"unsupported JSON value {json.ValueKind}");
        }
    }

    private static Value ParseObject(JsonElement json, SchemaType? expected)
    {
        if (json.TryGetProperty("__entity", out _)) return ParseUid(json);
        if (json.TryGetProperty("__extn", out var extn)) return ParseExtension(extn);
        if (expected is EntitySchemaType) return ParseUid(json);
        if (expected is ExtensionSchemaType && json.TryGetProperty("fn", out _)) return ParseExtension(json);
        var attrTypes = (expected as RecordSchemaType)?.Attributes;
        var d = new Dictionary<string, Value>(StringComparer.Ordinal);
        foreach (var p in json.EnumerateObject())
        {
            SchemaType? t = null;
            if (attrTypes is not null && attrTypes.TryGetValue(p.Name, out var at)) t = at.Type;
            d[p.Name] = ParseValue(p.Value, t);
        }
        return new RecordValue(d);
    }

    /// <summary>
    /// <c>{"fn": "decimal", "arg": "1.5"}</c>, or any extension function applied to value arguments:
    /// <c>{"fn": "offset", "args": [datetime, duration]}</c>.
    /// </summary>
    private static Value ParseExtension(JsonElement json)
    {
        var fn = json.GetProperty("fn").GetString()!;
        if (!ExtFunctions.TryGetByName(fn, out var f)) throw new PolicyFormatException($"unknown extension function `{fn}`");
        var args = new List<Value>();
        if (json.TryGetProperty("arg", out var single)) args.Add(ParseValue(single));
        else if (json.TryGetProperty("args", out var many))
            foreach (var a in many.EnumerateArray()) args.Add(ParseValue(a));
        try
        {
            return ExtFunctions.Call(f, [.. args]);
        }
        catch (EvaluationException ex)
        {
            throw new PolicyFormatException($"invalid extension value: {ex.Message}");
        }
    }
}
