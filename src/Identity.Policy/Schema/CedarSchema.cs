using System.Text.Json;
using Identity.Policy.Values;

namespace Identity.Policy.Schema;

/// <summary>
/// A schema: entity types and actions, with every type name resolved and the entity-type and action hierarchies
/// closed transitively. Built from Cedar schema syntax (<see cref="Parse"/>) or the JSON form (<see cref="FromJson"/>).
/// </summary>
public sealed class CedarSchema
{
    internal CedarSchema(Dictionary<string, EntityTypeDefinition> entityTypes, Dictionary<EntityUid, ActionDefinition> actions)
    {
        EntityTypes = entityTypes;
        Actions = actions;
        foreach (var et in entityTypes.Values) Close(et.AncestorTypes, et.MemberOfTypes, t => entityTypes.TryGetValue(t, out var d) ? d.MemberOfTypes : []);
        foreach (var a in actions.Values)
        {
            Close(a.Ancestors, a.MemberOf, u => actions.TryGetValue(u, out var d) ? d.MemberOf : []);
            if (a.Ancestors.Contains(a.Uid)) throw new PolicyFormatException($"cycle in the action hierarchy containing {a.Uid}");
        }
        ActionTypes = new HashSet<string>(actions.Keys.Select(k => k.Type), StringComparer.Ordinal);
    }

    public IReadOnlyDictionary<string, EntityTypeDefinition> EntityTypes { get; }
    public IReadOnlyDictionary<EntityUid, ActionDefinition> Actions { get; }

    /// <summary>The entity types of the declared actions (<c>Action</c>, <c>NS::Action</c>, ...).</summary>
    public IReadOnlySet<string> ActionTypes { get; }

    public static CedarSchema Parse(string text) => CedarSchemaParser.Parse(text);

    public static CedarSchema FromJson(JsonElement json)
    {
        try
        {
            return JsonSchemaParser.Parse(json);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException)
        {
            // A missing or mistyped JSON field: report it as malformed input like every other schema error.
            throw new PolicyFormatException($"malformed JSON schema: {ex.Message}");
        }
    }

    /// <summary>True when <paramref name="descendant"/> may be a member (or equal) of <paramref name="ancestor"/> by the schema.</summary>
    public bool EntityTypeMayBeIn(string descendant, string ancestor)
    {
        if (descendant == ancestor) return true;
        if (EntityTypes.TryGetValue(descendant, out var d)) return d.AncestorTypes.Contains(ancestor);
        // Action types: an action of this type may be in a group of the other type.
        foreach (var a in Actions.Values)
        {
            if (a.Uid.Type != descendant) continue;
            foreach (var anc in a.Ancestors)
                if (anc.Type == ancestor) return true;
        }
        return false;
    }

    /// <summary>True when the uid names a declared entity (for enumerated types, one of the listed ids) or action.</summary>
    public bool IsKnownEntity(EntityUid uid)
    {
        if (Actions.ContainsKey(uid)) return true;
        if (!EntityTypes.TryGetValue(uid.Type, out var def)) return false;
        return def.EnumIds is null || def.EnumIds.Contains(uid.Id);
    }

    private static void Close<T>(HashSet<T> result, IReadOnlyList<T> direct, Func<T, IReadOnlyList<T>> parents)
    {
        var stack = new Stack<T>(direct);
        while (stack.Count > 0)
        {
            var t = stack.Pop();
            if (!result.Add(t)) continue;
            foreach (var p in parents(t)) stack.Push(p);
        }
    }
}
