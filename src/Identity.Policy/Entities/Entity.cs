using Identity.Policy.Values;

namespace Identity.Policy.Entities;

/// <summary>An entity: identity, attributes, direct parents and tags.</summary>
public sealed class Entity
{
    private static readonly Dictionary<string, Value> NoValues = new(StringComparer.Ordinal);

    public Entity(EntityUid uid, Dictionary<string, Value>? attributes = null, IEnumerable<EntityUid>? parents = null, Dictionary<string, Value>? tags = null)
    {
        Uid = uid;
        Attributes = attributes ?? NoValues;
        Parents = parents is null ? [] : [.. parents];
        Tags = tags ?? NoValues;
    }

    public EntityUid Uid { get; }
    public IReadOnlyDictionary<string, Value> Attributes { get; }
    public HashSet<EntityUid> Parents { get; }
    public IReadOnlyDictionary<string, Value> Tags { get; }

    /// <summary>All transitive ancestors, computed once when the entity store is built.</summary>
    public HashSet<EntityUid> Ancestors { get; internal set; } = [];
}

/// <summary>
/// The entities an authorization request can see. Ancestor sets are closed transitively at construction so that
/// <c>in</c> is a single hash lookup at evaluation time.
/// </summary>
public sealed class EntityStore
{
    public static readonly EntityStore Empty = new([]);

    private readonly Dictionary<EntityUid, Entity> _entities;

    public EntityStore(IEnumerable<Entity> entities)
    {
        _entities = [];
        foreach (var e in entities)
        {
            if (!_entities.TryAdd(e.Uid, e))
                throw new PolicyFormatException($"duplicate entity {e.Uid}");
        }
        foreach (var e in _entities.Values) e.Ancestors = ComputeAncestors(e);
    }

    public int Count => _entities.Count;

    public IEnumerable<Entity> All => _entities.Values;

    public bool TryGet(EntityUid uid, out Entity entity) => _entities.TryGetValue(uid, out entity!);

    /// <summary>Cedar's <c>a in b</c> between two entity references.</summary>
    public bool IsDescendantOrSelf(EntityUid a, EntityUid b) =>
        a.Equals(b) || (_entities.TryGetValue(a, out var e) && e.Ancestors.Contains(b));

    private HashSet<EntityUid> ComputeAncestors(Entity entity)
    {
        var result = new HashSet<EntityUid>();
        var stack = new Stack<EntityUid>(entity.Parents);
        while (stack.Count > 0)
        {
            var p = stack.Pop();
            if (!result.Add(p)) continue;
            if (_entities.TryGetValue(p, out var parent))
                foreach (var gp in parent.Parents) stack.Push(gp);
        }
        return result;
    }
}
