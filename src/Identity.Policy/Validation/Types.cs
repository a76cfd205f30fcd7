using Identity.Policy.Schema;

namespace Identity.Policy.Validation;

public enum BoolKind { Any, True, False }

/// <summary>
/// Types of the strict validator. Booleans carry singleton refinements (true/false) so that the validator can
/// see through short-circuiting; entity types are single named types (strict mode has no entity-type unions).
/// </summary>
internal abstract record CType
{
    public static readonly BoolType AnyBool = new(BoolKind.Any);
    public static readonly BoolType True = new(BoolKind.True);
    public static readonly BoolType False = new(BoolKind.False);
    public static readonly LongType Long = new();
    public static readonly StringType String = new();

    public static CType FromSchema(SchemaType t) => t switch
    {
        BoolSchemaType => AnyBool,
        LongSchemaType => Long,
        StringSchemaType => String,
        ExtensionSchemaType e => new ExtType(e.Name),
        EntitySchemaType e => new EntityType(e.Name),
        SetSchemaType s => new SetType(FromSchema(s.Element)),
        RecordSchemaType r => RecordType.FromSchema(r),
        _ => throw new InvalidOperationException($"unknown schema type {t}"),
    };

    /// <summary>Least upper bound in strict mode; null when the types are incompatible.</summary>
    public static CType? Lub(CType a, CType b)
    {
        switch (a, b)
        {
            case (BoolType x, BoolType y):
                return x.Kind == y.Kind ? x : AnyBool;
            case (SetType x, SetType y):
                return Lub(x.Element, y.Element) is { } e ? new SetType(e) : null;
            case (RecordType x, RecordType y):
            {
                if (x.Attributes.Count != y.Attributes.Count) return null;
                var attrs = new Dictionary<string, (CType, bool)>(StringComparer.Ordinal);
                foreach (var (k, (tx, rx)) in x.Attributes)
                {
                    if (!y.Attributes.TryGetValue(k, out var ay) || ay.Required != rx) return null;
                    if (Lub(tx, ay.Type) is not { } t) return null;
                    attrs[k] = (t, rx);
                }
                return new RecordType(attrs);
            }
            default:
                return a.Equals(b) ? a : null;
        }
    }

    /// <summary>True when <paramref name="a"/> is a subtype of <paramref name="b"/>.</summary>
    public static bool IsSubtype(CType a, CType b) => Lub(a, b) is { } l && l.Equals(b);
}

internal sealed record BoolType(BoolKind Kind) : CType
{
    public BoolType Not() => Kind switch { BoolKind.True => False, BoolKind.False => True, _ => AnyBool };
}

internal sealed record LongType : CType;

internal sealed record StringType : CType;

internal sealed record ExtType(string Name) : CType;

internal sealed record EntityType(string Name) : CType;

internal sealed record SetType(CType Element) : CType;

internal sealed record RecordType(IReadOnlyDictionary<string, (CType Type, bool Required)> Attributes) : CType
{
    public static RecordType FromSchema(RecordSchemaType r)
    {
        var attrs = new Dictionary<string, (CType, bool)>(StringComparer.Ordinal);
        foreach (var (k, a) in r.Attributes) attrs[k] = (FromSchema(a.Type), a.Required);
        return new RecordType(attrs);
    }

    public bool Equals(RecordType? other)
    {
        if (other is null || other.Attributes.Count != Attributes.Count) return false;
        foreach (var (k, v) in Attributes)
            if (!other.Attributes.TryGetValue(k, out var o) || o.Required != v.Required || !o.Type.Equals(v.Type)) return false;
        return true;
    }

    public override int GetHashCode() => Attributes.Count;
}
