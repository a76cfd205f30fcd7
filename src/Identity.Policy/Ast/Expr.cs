using System.Text;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Extensions;
using Identity.Policy.Values;

namespace Identity.Policy.Ast;

public enum Var { Principal, Action, Resource, Context }

public enum SlotKind { Principal, Resource }

public enum UnaryOp { Not, Neg, IsEmpty }

public enum BinaryOp { Eq, Less, LessEq, Add, Sub, Mul, In, Contains, ContainsAll, ContainsAny, GetTag, HasTag }

/// <summary>
/// A Cedar expression. Each node evaluates itself (a tree-walking interpreter: parse once, evaluate many);
/// failures throw <see cref="EvaluationException"/>.
/// </summary>
public abstract class Expr
{
    public abstract Value Evaluate(EvaluationContext ctx);

    internal static bool AsBool(Value v) => v is BoolValue b ? b.Value : throw EvaluationException.TypeError("bool", v);
    internal static long AsLong(Value v) => v is LongValue l ? l.Value : throw EvaluationException.TypeError("long", v);
    internal static string AsString(Value v) => v is StringValue s ? s.Value : throw EvaluationException.TypeError("string", v);
    internal static EntityUid AsEntity(Value v) => v as EntityUid ?? throw EvaluationException.TypeError("entity", v);
    internal static SetValue AsSet(Value v) => v as SetValue ?? throw EvaluationException.TypeError("set", v);
}

public sealed class LiteralExpr(Value value) : Expr
{
    public Value Value { get; } = value;
    public override Value Evaluate(EvaluationContext ctx) => Value;
}

public sealed class VarExpr(Var var) : Expr
{
    public Var Var { get; } = var;

    public override Value Evaluate(EvaluationContext ctx) => Var switch
    {
        Var.Principal => ctx.Request.Principal,
        Var.Action => ctx.Request.Action,
        Var.Resource => ctx.Request.Resource,
        _ => ctx.Request.Context,
    };
}

/// <summary>A template slot; templates are linked (slots replaced by entities) before evaluation.</summary>
public sealed class SlotExpr(SlotKind slot) : Expr
{
    public SlotKind Slot { get; } = slot;
    public override Value Evaluate(EvaluationContext ctx) => throw new EvaluationException($"unlinked template slot ?{Slot.ToString().ToLowerInvariant()}");
}

public sealed class IfExpr(Expr condition, Expr then, Expr @else) : Expr
{
    public Expr Condition { get; } = condition;
    public Expr Then { get; } = then;
    public Expr Else { get; } = @else;
    public override Value Evaluate(EvaluationContext ctx) => AsBool(Condition.Evaluate(ctx)) ? Then.Evaluate(ctx) : Else.Evaluate(ctx);
}

public sealed class AndExpr(Expr left, Expr right) : Expr
{
    public Expr Left { get; } = left;
    public Expr Right { get; } = right;

    public override Value Evaluate(EvaluationContext ctx) =>
        !AsBool(Left.Evaluate(ctx)) ? BoolValue.False : BoolValue.Of(AsBool(Right.Evaluate(ctx)));
}

public sealed class OrExpr(Expr left, Expr right) : Expr
{
    public Expr Left { get; } = left;
    public Expr Right { get; } = right;

    public override Value Evaluate(EvaluationContext ctx) =>
        AsBool(Left.Evaluate(ctx)) ? BoolValue.True : BoolValue.Of(AsBool(Right.Evaluate(ctx)));
}

public sealed class UnaryExpr(UnaryOp op, Expr operand) : Expr
{
    public UnaryOp Op { get; } = op;
    public Expr Operand { get; } = operand;

    public override Value Evaluate(EvaluationContext ctx)
    {
        var v = Operand.Evaluate(ctx);
        switch (Op)
        {
            case UnaryOp.Not:
                return BoolValue.Of(!AsBool(v));
            case UnaryOp.Neg:
                var l = AsLong(v);
                if (l == long.MinValue) throw new EvaluationException($"overflow while negating {l}");
                return new LongValue(-l);
            default:
                return BoolValue.Of(AsSet(v).Count == 0);
        }
    }
}

public sealed class LikeExpr(Expr operand, Pattern pattern) : Expr
{
    public Expr Operand { get; } = operand;
    public Pattern Pattern { get; } = pattern;
    public override Value Evaluate(EvaluationContext ctx) => BoolValue.Of(Pattern.Matches(AsString(Operand.Evaluate(ctx))));
}

public sealed class IsExpr(Expr operand, string entityType) : Expr
{
    public Expr Operand { get; } = operand;
    public string EntityType { get; } = entityType;
    public override Value Evaluate(EvaluationContext ctx) => BoolValue.Of(string.Equals(AsEntity(Operand.Evaluate(ctx)).Type, EntityType, StringComparison.Ordinal));
}

public sealed class BinaryExpr(BinaryOp op, Expr left, Expr right) : Expr
{
    public BinaryOp Op { get; } = op;
    public Expr Left { get; } = left;
    public Expr Right { get; } = right;

    public override Value Evaluate(EvaluationContext ctx)
    {
        var a = Left.Evaluate(ctx);
        var b = Right.Evaluate(ctx);
        switch (Op)
        {
            case BinaryOp.Eq:
                return BoolValue.Of(a.Equals(b));
            case BinaryOp.Less:
            case BinaryOp.LessEq:
                return BoolValue.Of(Compare(a, b) is var c && (Op == BinaryOp.Less ? c < 0 : c <= 0));
            case BinaryOp.Add:
            case BinaryOp.Sub:
            case BinaryOp.Mul:
                return Arithmetic(AsLong(a), AsLong(b));
            case BinaryOp.In:
                return BoolValue.Of(In(AsEntity(a), b, ctx.Entities));
            case BinaryOp.Contains:
                return BoolValue.Of(AsSet(a).Contains(b));
            case BinaryOp.ContainsAll:
                return BoolValue.Of(AsSet(a).ContainsAll(AsSet(b)));
            case BinaryOp.ContainsAny:
                return BoolValue.Of(AsSet(a).ContainsAny(AsSet(b)));
            case BinaryOp.HasTag:
            {
                var tag = AsString(b);
                return BoolValue.Of(ctx.Entities.TryGet(AsEntity(a), out var e) && e.Tags.ContainsKey(tag));
            }
            default:
            {
                var uid = AsEntity(a);
                var tag = AsString(b);
                if (!ctx.Entities.TryGet(uid, out var e)) throw new EvaluationException($"entity {uid} does not exist");
                return e.Tags.TryGetValue(tag, out var v) ? v : throw new EvaluationException($"tag \"{tag}\" does not exist on {uid}");
            }
        }
    }

    /// <summary>Ordering for <c>&lt;</c>/<c>&lt;=</c>: defined on longs, datetimes and durations only.</summary>
    private static int Compare(Value a, Value b) => (a, b) switch
    {
        (LongValue x, LongValue y) => x.Value.CompareTo(y.Value),
        (DatetimeValue x, DatetimeValue y) => x.Millis.CompareTo(y.Millis),
        (DurationValue x, DurationValue y) => x.Millis.CompareTo(y.Millis),
        (LongValue or DatetimeValue or DurationValue, _) => throw EvaluationException.TypeError(a.TypeName, b),
        _ => throw EvaluationException.TypeError("long, datetime or duration", a),
    };

    private LongValue Arithmetic(long x, long y)
    {
        long r;
        var overflow = Op switch
        {
            BinaryOp.Add => AddOverflows(x, y, out r),
            BinaryOp.Sub => SubOverflows(x, y, out r),
            _ => MulOverflows(x, y, out r),
        };
        if (overflow) throw new EvaluationException($"integer overflow in {x} {(Op == BinaryOp.Add ? "+" : Op == BinaryOp.Sub ? "-" : "*")} {y}");
        return new LongValue(r);
    }

    private static bool AddOverflows(long x, long y, out long r)
    {
        r = unchecked(x + y);
        return ((x ^ r) & (y ^ r)) < 0;
    }

    private static bool SubOverflows(long x, long y, out long r)
    {
        r = unchecked(x - y);
        return ((x ^ y) & (x ^ r)) < 0;
    }

    private static bool MulOverflows(long x, long y, out long r)
    {
        var wide = Math.BigMul(x, y, out var low);
        r = low;
        // The product fits iff the high half is the sign extension of the low half.
        return wide != (low >> 63);
    }

    private static bool In(EntityUid uid, Value target, EntityStore entities)
    {
        if (target is EntityUid single) return entities.IsDescendantOrSelf(uid, single);
        var set = AsSet(target);
        // Every element must be an entity, even after a match is found (as in the reference semantics).
        foreach (var item in set.Items) AsEntity(item);
        foreach (var item in set.Items)
            if (entities.IsDescendantOrSelf(uid, (EntityUid)item)) return true;
        return false;
    }
}

public sealed class HasAttrExpr(Expr operand, string attribute) : Expr
{
    public Expr Operand { get; } = operand;
    public string Attribute { get; } = attribute;

    public override Value Evaluate(EvaluationContext ctx) => Operand.Evaluate(ctx) switch
    {
        RecordValue r => BoolValue.Of(r.Attributes.ContainsKey(Attribute)),
        EntityUid uid => BoolValue.Of(ctx.Entities.TryGet(uid, out var e) && e.Attributes.ContainsKey(Attribute)),
        var v => throw EvaluationException.TypeError("entity or record", v),
    };
}

public sealed class GetAttrExpr(Expr operand, string attribute) : Expr
{
    public Expr Operand { get; } = operand;
    public string Attribute { get; } = attribute;

    public override Value Evaluate(EvaluationContext ctx)
    {
        switch (Operand.Evaluate(ctx))
        {
            case RecordValue r:
                return r.TryGet(Attribute, out var rv) ? rv : throw new EvaluationException($"record does not have the attribute `{Attribute}`");
            case EntityUid uid:
                if (!ctx.Entities.TryGet(uid, out var e)) throw new EvaluationException($"entity {uid} does not exist");
                return e.Attributes.TryGetValue(Attribute, out var ev) ? ev : throw new EvaluationException($"{uid} does not have the attribute `{Attribute}`");
            case var v:
                throw EvaluationException.TypeError("entity or record", v);
        }
    }
}

public sealed class SetExpr : Expr
{
    // A set of literals (e.g. `action in [Action::"a", Action::"b"]`) is built once, at parse time.
    private readonly SetValue? _constant;

    public SetExpr(Expr[] elements)
    {
        Elements = elements;
        if (Array.TrueForAll(elements, e => e is LiteralExpr))
            _constant = SetValue.Of(Array.ConvertAll(elements, e => ((LiteralExpr)e).Value));
    }

    public Expr[] Elements { get; }

    public override Value Evaluate(EvaluationContext ctx)
    {
        if (_constant is not null) return _constant;
        var values = new Value[Elements.Length];
        for (var i = 0; i < values.Length; i++) values[i] = Elements[i].Evaluate(ctx);
        return SetValue.Of(values);
    }
}

public sealed class RecordExpr(KeyValuePair<string, Expr>[] fields) : Expr
{
    public KeyValuePair<string, Expr>[] Fields { get; } = fields;

    public override Value Evaluate(EvaluationContext ctx)
    {
        var d = new Dictionary<string, Value>(Fields.Length, StringComparer.Ordinal);
        foreach (var (k, e) in Fields) d[k] = e.Evaluate(ctx);
        return new RecordValue(d);
    }
}

/// <summary>A call of an extension function or method; for methods the receiver is the first argument.</summary>
public sealed class ExtCallExpr : Expr
{
    // A constructor applied to a valid string literal, e.g. ip("10.0.0.0/8"), is evaluated once at parse time.
    // Invalid literals are left to fail at evaluation, where the error belongs to the policy.
    private readonly Value? _constant;

    public ExtCallExpr(ExtFunction function, Expr[] arguments)
    {
        Function = function;
        Arguments = arguments;
        if (ExtFunctions.IsConstructor(function) && arguments is [LiteralExpr { Value: StringValue s }])
            _constant = ExtFunctions.Construct(function, s.Value);
    }

    public ExtFunction Function { get; }
    public Expr[] Arguments { get; }

    public override Value Evaluate(EvaluationContext ctx)
    {
        if (_constant is not null) return _constant;
        var args = new Value[Arguments.Length];
        for (var i = 0; i < args.Length; i++) args[i] = Arguments[i].Evaluate(ctx);
        return ExtFunctions.Call(Function, args);
    }
}

/// <summary>A call of a function that does not exist: parses, but always fails to evaluate.</summary>
public sealed class UnknownFunctionExpr(string name, Expr[] arguments) : Expr
{
    public string Name { get; } = name;
    public Expr[] Arguments { get; } = arguments;

    public override Value Evaluate(EvaluationContext ctx) => throw new EvaluationException($"unknown extension function `{Name}`");
}

/// <summary>A <c>like</c> pattern: literal characters and <c>*</c> wildcards.</summary>
public sealed class Pattern
{
    // Each element is a UTF-16 code unit, or -1 for the wildcard.
    private readonly int[] _elements;

    public Pattern(int[] elements) => _elements = elements;

    public IReadOnlyList<int> Elements => _elements;

    /// <summary>Glob match with single-star backtracking: linear in practice, no allocation.</summary>
    public bool Matches(string s)
    {
        int p = 0, i = 0, starP = -1, starI = 0;
        while (i < s.Length)
        {
            if (p < _elements.Length && _elements[p] == -1)
            {
                starP = p++;
                starI = i;
            }
            else if (p < _elements.Length && _elements[p] == s[i])
            {
                p++;
                i++;
            }
            else if (starP >= 0)
            {
                p = starP + 1;
                i = ++starI;
            }
            else
            {
                return false;
            }
        }
        while (p < _elements.Length && _elements[p] == -1) p++;
        return p == _elements.Length;
    }

    public override string ToString()
    {
        var sb = new StringBuilder("\"");
        foreach (var e in _elements)
        {
            if (e == -1) sb.Append('*');
            else if (e == '*') sb.Append("\\*");
            else sb.Append((char)e);
        }
        return sb.Append('"').ToString();
    }
}
