using System.Text;

namespace Identity.Policy.Values;

/// <summary>A Cedar runtime value. Values are immutable and compare structurally.</summary>
public abstract class Value : IEquatable<Value>
{
    /// <summary>Name of the value's type as used in error messages.</summary>
    public abstract string TypeName { get; }

    public abstract bool Equals(Value? other);

    public sealed override bool Equals(object? obj) => obj is Value v && Equals(v);

    public abstract override int GetHashCode();

    /// <summary>Renders the value in Cedar syntax (used by error messages and tests).</summary>
    public abstract void Write(StringBuilder sb);

    public override string ToString()
    {
        var sb = new StringBuilder();
        Write(sb);
        return sb.ToString();
    }

    internal static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\0': sb.Append("\\0"); break;
                default:
                    if (char.IsControl(c)) sb.Append("\\u{").Append(((int)c).ToString("x")).Append('}');
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}

public sealed class BoolValue : Value
{
    public static readonly BoolValue True = new(true);
    public static readonly BoolValue False = new(false);

    public bool Value { get; }

    private BoolValue(bool value) => Value = value;

    public static BoolValue Of(bool b) => b ? True : False;

    public override string TypeName => "bool";
    public override bool Equals(Value? other) => other is BoolValue b && b.Value == Value;
    public override int GetHashCode() => Value ? 1 : 2;
    public override void Write(StringBuilder sb) => sb.Append(Value ? "true" : "false");
}

public sealed class LongValue(long value) : Value
{
    public long Value { get; } = value;

    public override string TypeName => "long";
    public override bool Equals(Value? other) => other is LongValue l && l.Value == Value;
    public override int GetHashCode() => Value.GetHashCode();
    public override void Write(StringBuilder sb) => sb.Append(Value);
}

public sealed class StringValue(string value) : Value
{
    public string Value { get; } = value;

    public override string TypeName => "string";
    public override bool Equals(Value? other) => other is StringValue s && string.Equals(s.Value, Value, StringComparison.Ordinal);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value);
    public override void Write(StringBuilder sb) => WriteString(sb, Value);
}

/// <summary>A reference to an entity: its type name (possibly namespaced) and id.</summary>
public sealed class EntityUid : Value
{
    private readonly int _hash;

    public EntityUid(string type, string id)
    {
        Type = type;
        Id = id;
        _hash = HashCode.Combine(StringComparer.Ordinal.GetHashCode(type), StringComparer.Ordinal.GetHashCode(id));
    }

    public string Type { get; }
    public string Id { get; }

    public override string TypeName => "entity";

    public override bool Equals(Value? other) =>
        ReferenceEquals(this, other)
        || (other is EntityUid e && e._hash == _hash && string.Equals(e.Type, Type, StringComparison.Ordinal) && string.Equals(e.Id, Id, StringComparison.Ordinal));

    public override int GetHashCode() => _hash;

    public override void Write(StringBuilder sb)
    {
        sb.Append(Type).Append("::");
        WriteString(sb, Id);
    }
}

/// <summary>An unordered set of distinct values.</summary>
public sealed class SetValue : Value
{
    public static readonly SetValue Empty = new([]);

    // Small sets are searched linearly; a hash set is built lazily only for larger ones,
    // which keeps the common case (a handful of elements) allocation-free.
    private const int HashThreshold = 8;
    private HashSet<Value>? _lookup;
    private int _hash;

    private SetValue(Value[] items) => Items = items;

    /// <summary>The distinct elements, in first-occurrence order.</summary>
    public Value[] Items { get; }

    public int Count => Items.Length;

    /// <summary>Builds a set, dropping duplicates.</summary>
    public static SetValue Of(IReadOnlyList<Value> values)
    {
        if (values.Count == 0) return Empty;
        var distinct = new List<Value>(values.Count);
        if (values.Count <= HashThreshold)
        {
            foreach (var v in values)
                if (!distinct.Contains(v)) distinct.Add(v);
        }
        else
        {
            var seen = new HashSet<Value>();
            foreach (var v in values)
                if (seen.Add(v)) distinct.Add(v);
        }
        return new SetValue(distinct.ToArray());
    }

    public bool Contains(Value v)
    {
        var items = Items;
        if (items.Length <= HashThreshold)
        {
            for (var i = 0; i < items.Length; i++)
                if (items[i].Equals(v)) return true;
            return false;
        }
        _lookup ??= new HashSet<Value>(items);
        return _lookup.Contains(v);
    }

    /// <summary>True if every element of <paramref name="other"/> is in this set.</summary>
    public bool ContainsAll(SetValue other)
    {
        foreach (var v in other.Items)
            if (!Contains(v)) return false;
        return true;
    }

    public bool ContainsAny(SetValue other)
    {
        foreach (var v in other.Items)
            if (Contains(v)) return true;
        return false;
    }

    public override string TypeName => "set";

    public override bool Equals(Value? other) =>
        ReferenceEquals(this, other)
        || (other is SetValue s && s.Count == Count && ContainsAll(s));

    public override int GetHashCode()
    {
        if (_hash == 0)
        {
            // Order-independent combination, because sets are unordered.
            var h = Count + 17;
            foreach (var v in Items) h ^= v.GetHashCode() * 31;
            _hash = h == 0 ? 1 : h;
        }
        return _hash;
    }

    public override void Write(StringBuilder sb)
    {
        sb.Append('[');
        for (var i = 0; i < Items.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            Items[i].Write(sb);
        }
        sb.Append(']');
    }
}

/// <summary>A record: a map from attribute names to values.</summary>
public sealed class RecordValue : Value
{
    public static readonly RecordValue Empty = new(new Dictionary<string, Value>(StringComparer.Ordinal));

    public RecordValue(Dictionary<string, Value> attributes) => Attributes = attributes;

    public IReadOnlyDictionary<string, Value> Attributes { get; }

    public bool TryGet(string name, out Value value) => Attributes.TryGetValue(name, out value!);

    public override string TypeName => "record";

    public override bool Equals(Value? other)
    {
        if (ReferenceEquals(this, other)) return true;
        if (other is not RecordValue r || r.Attributes.Count != Attributes.Count) return false;
        foreach (var (k, v) in Attributes)
            if (!r.Attributes.TryGetValue(k, out var ov) || !v.Equals(ov)) return false;
        return true;
    }

    public override int GetHashCode()
    {
        var h = Attributes.Count;
        foreach (var (k, v) in Attributes) h ^= HashCode.Combine(StringComparer.Ordinal.GetHashCode(k), v.GetHashCode());
        return h;
    }

    public override void Write(StringBuilder sb)
    {
        sb.Append('{');
        var first = true;
        foreach (var (k, v) in Attributes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!first) sb.Append(", ");
            first = false;
            WriteString(sb, k);
            sb.Append(": ");
            v.Write(sb);
        }
        sb.Append('}');
    }
}
