using Identity.Policy.Values;

namespace Identity.Policy.Schema;

/// <summary>A type as written in a schema, before its names are resolved.</summary>
internal abstract record RawType;

/// <summary>A name: a common type, an entity type or a built-in type, resolved in namespace order.</summary>
internal sealed record RawName(string Name, string Namespace, bool EntityOnly = false) : RawType;

internal sealed record RawBuiltin(SchemaType Type) : RawType;

internal sealed record RawSet(RawType Element) : RawType;

internal sealed record RawRecord(List<(string Name, RawType Type, bool Required)> Attributes) : RawType;

/// <summary>
/// Collects declarations from either schema syntax, then resolves names: an unqualified name is looked up as a
/// common type and then an entity type, first in the declaring namespace and then in the empty namespace, and
/// finally as a built-in type.
/// </summary>
internal sealed class SchemaBuilder
{
    private readonly Dictionary<string, RawType> _commonTypes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Ns, List<RawName> MemberOf, RawType? Shape, RawType? Tags, List<string>? Enum)> _entities = new(StringComparer.Ordinal);
    private readonly Dictionary<EntityUid, (string Ns, List<EntityUid> MemberOf, List<RawName>? Principals, List<RawName>? Resources, RawType? Context)> _actions = [];

    public static string Qualify(string ns, string name) => ns.Length == 0 ? name : ns + "::" + name;

    public static SchemaType? Builtin(string name) => name switch
    {
        "Long" or "__cedar::Long" => LongSchemaType.Instance,
        "String" or "__cedar::String" => StringSchemaType.Instance,
        "Bool" or "__cedar::Bool" => BoolSchemaType.Instance,
        "ipaddr" or "decimal" or "datetime" or "duration" => new ExtensionSchemaType(name),
        "__cedar::ipaddr" or "__cedar::decimal" or "__cedar::datetime" or "__cedar::duration" => new ExtensionSchemaType(name["__cedar::".Length..]),
        _ => null,
    };

    public void AddCommonType(string ns, string name, RawType type)
    {
        if (!_commonTypes.TryAdd(Qualify(ns, name), type)) throw new PolicyFormatException($"duplicate common type `{Qualify(ns, name)}`");
    }

    public void AddEntityType(string ns, string name, List<RawName> memberOf, RawType? shape, RawType? tags, List<string>? enumIds)
    {
        if (!_entities.TryAdd(Qualify(ns, name), (ns, memberOf, shape, tags, enumIds)))
            throw new PolicyFormatException($"duplicate entity type `{Qualify(ns, name)}`");
    }

    /// <summary>
    /// Declares an action. A parent written with an unqualified type (<c>Action::"x"</c>) is resolved in
    /// <paramref name="ns"/> first, then in the empty namespace.
    /// </summary>
    public void AddAction(string ns, EntityUid uid, List<EntityUid> memberOf, List<RawName>? principals, List<RawName>? resources, RawType? context)
    {
        if (!_actions.TryAdd(uid, (ns, memberOf, principals, resources, context)))
            throw new PolicyFormatException($"duplicate action {uid}");
    }

    public CedarSchema Build()
    {
        // Resolve every common type, used or not, so that cycles and undeclared names are reported.
        foreach (var common in _commonTypes.Values) Resolve(common, 0);

        var entityTypes = new Dictionary<string, EntityTypeDefinition>(StringComparer.Ordinal);
        foreach (var (name, e) in _entities)
        {
            var attrs = e.Shape is null ? RecordSchemaType.Empty : Resolve(e.Shape, 0) as RecordSchemaType
                ?? throw new PolicyFormatException($"the shape of entity type `{name}` must be a record");
            entityTypes.Add(name, new EntityTypeDefinition(name, e.MemberOf.ConvertAll(ResolveEntityType), attrs,
                e.Tags is null ? null : Resolve(e.Tags, 0), e.Enum));
        }
        var actions = new Dictionary<EntityUid, ActionDefinition>();
        foreach (var (uid, a) in _actions)
        {
            var memberOf = a.MemberOf.ConvertAll(parent => ResolveAction(parent, a.Ns)
                ?? throw new PolicyFormatException($"action {uid} is a member of undeclared action {parent}"));
            var context = a.Context is null ? RecordSchemaType.Empty : Resolve(a.Context, 0) as RecordSchemaType
                ?? throw new PolicyFormatException($"the context of action {uid} must be a record");
            actions.Add(uid, new ActionDefinition(uid, memberOf,
                a.Principals?.ConvertAll(ResolveEntityType) ?? [], a.Resources?.ConvertAll(ResolveEntityType) ?? [], context));
        }
        return new CedarSchema(entityTypes, actions);
    }

    private EntityUid? ResolveAction(EntityUid parent, string ns)
    {
        if (ns.Length > 0 && !parent.Type.Contains("::"))
        {
            var qualified = new EntityUid(Qualify(ns, parent.Type), parent.Id);
            if (_actions.ContainsKey(qualified)) return qualified;
        }
        return _actions.ContainsKey(parent) ? parent : null;
    }

    private string ResolveEntityType(RawName n)
    {
        if (!n.Name.Contains("::") && _entities.ContainsKey(Qualify(n.Namespace, n.Name))) return Qualify(n.Namespace, n.Name);
        if (_entities.ContainsKey(n.Name)) return n.Name;
        throw new PolicyFormatException($"undeclared entity type `{n.Name}`");
    }

    private SchemaType Resolve(RawType raw, int depth)
    {
        if (depth > 100) throw new PolicyFormatException("cyclic common type definitions");
        switch (raw)
        {
            case RawBuiltin b:
                return b.Type;
            case RawSet s:
                return new SetSchemaType(Resolve(s.Element, depth));
            case RawRecord r:
            {
                var attrs = new Dictionary<string, AttributeType>(StringComparer.Ordinal);
                foreach (var (name, type, required) in r.Attributes)
                    if (!attrs.TryAdd(name, new AttributeType(Resolve(type, depth), required)))
                        throw new PolicyFormatException($"duplicate attribute `{name}`");
                return new RecordSchemaType(attrs);
            }
            default:
            {
                var n = (RawName)raw;
                if (n.EntityOnly) return new EntitySchemaType(ResolveEntityType(n));
                if (n.Name.StartsWith("__cedar::", StringComparison.Ordinal))
                    return Builtin(n.Name) ?? throw new PolicyFormatException($"unknown built-in type `{n.Name}`");
                var candidates = n.Name.Contains("::") || n.Namespace.Length == 0
                    ? [n.Name]
                    : new[] { Qualify(n.Namespace, n.Name), n.Name };
                foreach (var c in candidates)
                {
                    if (_commonTypes.TryGetValue(c, out var common)) return Resolve(common, depth + 1);
                    if (_entities.ContainsKey(c)) return new EntitySchemaType(c);
                }
                return Builtin(n.Name) ?? throw new PolicyFormatException($"undeclared type `{n.Name}`");
            }
        }
    }
}
