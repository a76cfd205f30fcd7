using Identity.Policy.Values;

namespace Identity.Policy.Schema;

/// <summary>A type declared in a schema (attribute, context, tag or common type), with names fully resolved.</summary>
public abstract record SchemaType;

public sealed record BoolSchemaType : SchemaType
{
    public static readonly BoolSchemaType Instance = new();
}

public sealed record LongSchemaType : SchemaType
{
    public static readonly LongSchemaType Instance = new();
}

public sealed record StringSchemaType : SchemaType
{
    public static readonly StringSchemaType Instance = new();
}

/// <summary>An extension type: <c>ipaddr</c>, <c>decimal</c>, <c>datetime</c> or <c>duration</c>.</summary>
public sealed record ExtensionSchemaType(string Name) : SchemaType;

public sealed record EntitySchemaType(string Name) : SchemaType;

public sealed record SetSchemaType(SchemaType Element) : SchemaType;

public sealed record AttributeType(SchemaType Type, bool Required);

public sealed record RecordSchemaType(IReadOnlyDictionary<string, AttributeType> Attributes) : SchemaType
{
    public static readonly RecordSchemaType Empty = new(new Dictionary<string, AttributeType>(StringComparer.Ordinal));
}

/// <summary>An entity type declaration.</summary>
public sealed class EntityTypeDefinition(string name, IReadOnlyList<string> memberOfTypes, RecordSchemaType attributes, SchemaType? tags, IReadOnlyList<string>? enumIds)
{
    public string Name { get; } = name;
    public IReadOnlyList<string> MemberOfTypes { get; } = memberOfTypes;
    public RecordSchemaType Attributes { get; } = attributes;
    public SchemaType? Tags { get; } = tags;

    /// <summary>For enumerated entity types, the only valid ids.</summary>
    public IReadOnlyList<string>? EnumIds { get; } = enumIds;

    /// <summary>Every type an entity of this type may (transitively) be a member of.</summary>
    public HashSet<string> AncestorTypes { get; } = new(StringComparer.Ordinal);
}

/// <summary>An action declaration.</summary>
public sealed class ActionDefinition(EntityUid uid, IReadOnlyList<EntityUid> memberOf, IReadOnlyList<string> principals, IReadOnlyList<string> resources, RecordSchemaType context)
{
    public EntityUid Uid { get; } = uid;
    public IReadOnlyList<EntityUid> MemberOf { get; } = memberOf;
    public IReadOnlyList<string> Principals { get; } = principals;
    public IReadOnlyList<string> Resources { get; } = resources;
    public RecordSchemaType Context { get; } = context;

    /// <summary>Every action group this action is (transitively) in.</summary>
    public HashSet<EntityUid> Ancestors { get; } = [];
}
