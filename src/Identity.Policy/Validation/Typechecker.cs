using Identity.Policy.Ast;
using Identity.Policy.Extensions;
using Identity.Policy.Schema;
using Identity.Policy.Values;

namespace Identity.Policy.Validation;

/// <summary>A type error found while checking one policy in one request environment.</summary>
internal sealed class TypeErrorException(string message) : Exception(message);

/// <summary>One request shape the schema allows: principal type, action, resource type, context type.</summary>
internal sealed record RequestEnv(string Principal, EntityUid Action, string Resource, RecordType Context);

/// <summary>
/// Strict-mode type checking of one expression in one request environment, following the formal model
/// (cedar-lean Validation/Typechecker): boolean singleton types make <c>&amp;&amp;</c>, <c>||</c> and
/// <c>if</c> skip branches that cannot run, and "capabilities" record which optional attributes and tags are
/// known to exist after a <c>has</c> / <c>hasTag</c> test.
/// </summary>
internal sealed class Typechecker(CedarSchema schema, RequestEnv env)
{
    /// <summary>A fact established by a guard: expression <c>Target</c> has attribute or tag <c>Key</c>.</summary>
    private readonly record struct Capability(Expr Target, string? Attr, Expr? Tag);

    private sealed class Caps(List<Capability> items)
    {
        public static readonly Caps Empty = new([]);
        public List<Capability> Items { get; } = items;

        public bool Contains(Capability c)
        {
            foreach (var i in Items)
                if (Same(i, c)) return true;
            return false;
        }

        public Caps Union(Caps other)
        {
            if (other.Items.Count == 0) return this;
            if (Items.Count == 0) return other;
            var list = new List<Capability>(Items);
            foreach (var c in other.Items)
                if (!Contains(c)) list.Add(c);
            return new Caps(list);
        }

        public Caps Intersect(Caps other)
        {
            var list = new List<Capability>();
            foreach (var c in Items)
                if (other.Contains(c)) list.Add(c);
            return new Caps(list);
        }

        private static bool Same(Capability a, Capability b) =>
            a.Attr == b.Attr && ExprEquality.Equal(a.Target, b.Target) && (a.Tag is null ? b.Tag is null : b.Tag is not null && ExprEquality.Equal(a.Tag, b.Tag));
    }

    public CType Check(Expr e) => TypeOf(e, Caps.Empty).Type;

    private static TypeErrorException Error(string message) => new(message);

    private (CType Type, Caps Caps) TypeOf(Expr e, Caps c)
    {
        switch (e)
        {
            case LiteralExpr lit:
                return (TypeOfLiteral(lit.Value), Caps.Empty);
            case VarExpr v:
                return (v.Var switch
                {
                    Var.Principal => new EntityType(env.Principal),
                    Var.Action => new EntityType(env.Action.Type),
                    Var.Resource => new EntityType(env.Resource),
                    _ => env.Context,
                }, Caps.Empty);
            case SlotExpr s:
                // An unlinked slot may hold any entity; typing it as the variable's own type keeps == and in open.
                return (new EntityType(s.Slot == SlotKind.Principal ? env.Principal : env.Resource), Caps.Empty);
            case IfExpr ite:
            {
                var (t1, c1) = TypeOf(ite.Condition, c);
                if (t1 is not BoolType b) throw Error($"expected a boolean condition, found {t1}");
                switch (b.Kind)
                {
                    case BoolKind.True:
                    {
                        var (t2, c2) = TypeOf(ite.Then, c.Union(c1));
                        return (t2, c1.Union(c2));
                    }
                    case BoolKind.False:
                        return TypeOf(ite.Else, c);
                    default:
                    {
                        var (t2, c2) = TypeOf(ite.Then, c.Union(c1));
                        var (t3, c3) = TypeOf(ite.Else, c);
                        var lub = CType.Lub(t2, t3) ?? throw Error($"if branches have incompatible types {t2} and {t3}");
                        return (lub, c1.Union(c2).Intersect(c3));
                    }
                }
            }
            case AndExpr and:
            {
                var (t1, c1) = TypeOf(and.Left, c);
                if (t1 is not BoolType b1) throw Error($"expected boolean operand of &&, found {t1}");
                if (b1.Kind == BoolKind.False) return (b1, Caps.Empty);
                var (t2, c2) = TypeOf(and.Right, c.Union(c1));
                if (t2 is not BoolType b2) throw Error($"expected boolean operand of &&, found {t2}");
                return b2.Kind switch
                {
                    BoolKind.False => (CType.False, Caps.Empty),
                    BoolKind.True => (b1, c1.Union(c2)),
                    _ => (CType.AnyBool, c1.Union(c2)),
                };
            }
            case OrExpr or:
            {
                var (t1, c1) = TypeOf(or.Left, c);
                if (t1 is not BoolType b1) throw Error($"expected boolean operand of ||, found {t1}");
                if (b1.Kind == BoolKind.True) return (b1, Caps.Empty);
                var (t2, c2) = TypeOf(or.Right, c);
                if (t2 is not BoolType b2) throw Error($"expected boolean operand of ||, found {t2}");
                if (b1.Kind == BoolKind.False) return (b2, c2);
                return b2.Kind switch
                {
                    BoolKind.True => (CType.True, Caps.Empty),
                    BoolKind.False => (CType.AnyBool, c1),
                    _ => (CType.AnyBool, c1.Intersect(c2)),
                };
            }
            case UnaryExpr u:
            {
                var t = TypeOf(u.Operand, c).Type;
                return (u.Op, t) switch
                {
                    (UnaryOp.Not, BoolType b) => (b.Not(), Caps.Empty),
                    (UnaryOp.Neg, LongType) => (CType.Long, Caps.Empty),
                    (UnaryOp.IsEmpty, SetType) => (CType.AnyBool, Caps.Empty),
                    _ => throw Error($"unexpected operand type {t} for {u.Op}"),
                };
            }
            case LikeExpr like:
            {
                var t = TypeOf(like.Operand, c).Type;
                return t is StringType ? (CType.AnyBool, Caps.Empty) : throw Error($"`like` expects a string, found {t}");
            }
            case IsExpr isExpr:
            {
                var t = TypeOf(isExpr.Operand, c).Type;
                if (t is not EntityType et) throw Error($"`is` expects an entity, found {t}");
                return (et.Name == isExpr.EntityType ? CType.True : CType.False, Caps.Empty);
            }
            case BinaryExpr bin:
                return TypeOfBinary(bin, c);
            case HasAttrExpr has:
                return TypeOfHas(has, c);
            case GetAttrExpr get:
                return (TypeOfGet(get, c), Caps.Empty);
            case SetExpr set:
            {
                if (set.Elements.Length == 0) throw Error("empty set literals are not allowed in strict validation");
                CType? lub = null;
                foreach (var el in set.Elements)
                {
                    var t = TypeOf(el, c).Type;
                    lub = lub is null ? t : CType.Lub(lub, t) ?? throw Error("set elements have incompatible types");
                }
                return (new SetType(lub!), Caps.Empty);
            }
            case RecordExpr rec:
            {
                var attrs = new Dictionary<string, (CType, bool)>(StringComparer.Ordinal);
                foreach (var (k, v) in rec.Fields) attrs[k] = (TypeOf(v, c).Type, true);
                return (new RecordType(attrs), Caps.Empty);
            }
            case ExtCallExpr call:
                return (TypeOfCall(call, c), Caps.Empty);
            case UnknownFunctionExpr unknown:
                throw Error($"unknown extension function `{unknown.Name}`");
            default:
                throw Error($"unsupported expression {e.GetType().Name}");
        }
    }

    private CType TypeOfLiteral(Value v) => v switch
    {
        BoolValue b => b.Value ? CType.True : CType.False,
        LongValue => CType.Long,
        StringValue => CType.String,
        EntityUid uid => schema.IsKnownEntity(uid) ? new EntityType(uid.Type) : throw Error($"unknown entity {uid}"),
        _ => throw Error($"unexpected literal {v}"),
    };

    /// <summary>The entity literal an expression denotes: a literal, or <c>action</c> (fixed per environment).</summary>
    private EntityUid? LiteralUid(Expr e) => e switch
    {
        LiteralExpr { Value: EntityUid uid } => uid,
        VarExpr { Var: Var.Action } => env.Action,
        _ => null,
    };

    private (CType, Caps) TypeOfBinary(BinaryExpr bin, Caps c)
    {
        var t1 = TypeOf(bin.Left, c).Type;
        var t2 = TypeOf(bin.Right, c).Type;
        switch (bin.Op)
        {
            case BinaryOp.Eq:
            {
                var l1 = LiteralOrAction(bin.Left);
                var l2 = LiteralOrAction(bin.Right);
                if (l1 is not null && l2 is not null) return (l1.Equals(l2) ? CType.True : CType.False, Caps.Empty);
                if (CType.Lub(t1, t2) is not null) return (CType.AnyBool, Caps.Empty);
                if (t1 is EntityType && t2 is EntityType) return (CType.False, Caps.Empty);
                throw Error($"cannot compare {t1} and {t2} with ==");
            }
            case BinaryOp.In:
                return (t1, t2) switch
                {
                    (EntityType e1, EntityType e2) => (TypeOfInEntity(e1.Name, e2.Name, bin.Left, bin.Right), Caps.Empty),
                    (EntityType e1, SetType { Element: EntityType e2 }) => (TypeOfInSet(e1.Name, e2.Name, bin.Left, bin.Right), Caps.Empty),
                    _ => throw Error($"`in` expects an entity and an entity or set of entities, found {t1} and {t2}"),
                };
            case BinaryOp.HasTag:
            case BinaryOp.GetTag:
            {
                if (t1 is not EntityType et || t2 is not StringType) throw Error($"tag operations expect an entity and a string, found {t1} and {t2}");
                return bin.Op == BinaryOp.HasTag ? TypeOfHasTag(et.Name, bin.Left, bin.Right, c) : (TypeOfGetTag(et.Name, bin.Left, bin.Right, c), Caps.Empty);
            }
            case BinaryOp.Less:
            case BinaryOp.LessEq:
                return (t1, t2) switch
                {
                    (LongType, LongType) => (CType.AnyBool, Caps.Empty),
                    (ExtType { Name: "datetime" }, ExtType { Name: "datetime" }) => (CType.AnyBool, Caps.Empty),
                    (ExtType { Name: "duration" }, ExtType { Name: "duration" }) => (CType.AnyBool, Caps.Empty),
                    _ => throw Error($"cannot order {t1} and {t2}"),
                };
            case BinaryOp.Add:
            case BinaryOp.Sub:
            case BinaryOp.Mul:
                return t1 is LongType && t2 is LongType ? (CType.Long, Caps.Empty) : throw Error($"arithmetic expects longs, found {t1} and {t2}");
            case BinaryOp.Contains:
                return t1 is SetType s && CType.Lub(t2, s.Element) is not null
                    ? (CType.AnyBool, Caps.Empty)
                    : throw Error($"`contains` expects a set and a compatible element, found {t1} and {t2}");
            default:
                return t1 is SetType s1 && t2 is SetType s2 && CType.Lub(s1.Element, s2.Element) is not null
                    ? (CType.AnyBool, Caps.Empty)
                    : throw Error($"`{bin.Op}` expects compatible sets, found {t1} and {t2}");
        }
    }

    private Value? LiteralOrAction(Expr e) => e is VarExpr { Var: Var.Action } ? env.Action : (e as LiteralExpr)?.Value;

    private bool ActionMayBeIn(EntityUid action, EntityUid group) =>
        action.Equals(group) || (schema.Actions.TryGetValue(action, out var def) && def.Ancestors.Contains(group));

    private BoolType TypeOfInEntity(string ety1, string ety2, Expr x1, Expr x2)
    {
        if (LiteralUid(x1) is { } a && schema.Actions.ContainsKey(a) && LiteralUid(x2) is { } g)
            return ActionMayBeIn(a, g) ? CType.True : CType.False;
        return schema.EntityTypeMayBeIn(ety1, ety2) ? CType.AnyBool : CType.False;
    }

    private BoolType TypeOfInSet(string ety1, string ety2, Expr x1, Expr x2)
    {
        if (LiteralUid(x1) is { } a && schema.Actions.ContainsKey(a) && x2 is SetExpr set)
        {
            var all = true;
            var any = false;
            foreach (var el in set.Elements)
            {
                if (LiteralUid(el) is not { } g) { all = false; break; }
                any |= ActionMayBeIn(a, g);
            }
            if (all) return any ? CType.True : CType.False;
        }
        return schema.EntityTypeMayBeIn(ety1, ety2) ? CType.AnyBool : CType.False;
    }

    private (CType, Caps) TypeOfHasTag(string ety, Expr x, Expr tag, Caps c)
    {
        if (schema.EntityTypes.TryGetValue(ety, out var def))
        {
            if (def.Tags is null) return (CType.False, Caps.Empty);
            var cap = new Capability(x, null, tag);
            return c.Contains(cap) ? (CType.True, Caps.Empty) : (CType.AnyBool, new Caps([cap]));
        }
        if (schema.ActionTypes.Contains(ety)) return (CType.False, Caps.Empty);
        throw Error($"unknown entity type {ety}");
    }

    private CType TypeOfGetTag(string ety, Expr x, Expr tag, Caps c)
    {
        if (!schema.EntityTypes.TryGetValue(ety, out var def)) throw Error($"unknown entity type {ety}");
        if (def.Tags is null) throw Error($"entity type {ety} has no tags");
        return c.Contains(new Capability(x, null, tag)) ? CType.FromSchema(def.Tags) : throw Error("tag access not guarded by hasTag");
    }

    private (CType, Caps) TypeOfHas(HasAttrExpr has, Caps c)
    {
        var t = TypeOf(has.Operand, c).Type;
        switch (t)
        {
            case RecordType r:
                return HasInRecord(r, has, c, knownToExist: true);
            case EntityType et:
                if (schema.EntityTypes.TryGetValue(et.Name, out var def))
                    return HasInRecord(RecordType.FromSchema(def.Attributes), has, c, knownToExist: false);
                if (schema.ActionTypes.Contains(et.Name)) return (CType.False, Caps.Empty);
                throw Error($"unknown entity type {et.Name}");
            default:
                throw Error($"`has` expects an entity or record, found {t}");
        }
    }

    private static (CType, Caps) HasInRecord(RecordType r, HasAttrExpr has, Caps c, bool knownToExist)
    {
        if (!r.Attributes.TryGetValue(has.Attribute, out var a)) return (CType.False, Caps.Empty);
        var cap = new Capability(has.Operand, has.Attribute, null);
        if (c.Contains(cap) || (a.Required && knownToExist)) return (CType.True, Caps.Empty);
        return (CType.AnyBool, new Caps([cap]));
    }

    private CType TypeOfGet(GetAttrExpr get, Caps c)
    {
        var t = TypeOf(get.Operand, c).Type;
        RecordType r;
        switch (t)
        {
            case RecordType rec:
                r = rec;
                break;
            case EntityType et:
                if (!schema.EntityTypes.TryGetValue(et.Name, out var def)) throw Error($"unknown entity type {et.Name}");
                r = RecordType.FromSchema(def.Attributes);
                break;
            default:
                throw Error($"attribute access expects an entity or record, found {t}");
        }
        if (!r.Attributes.TryGetValue(get.Attribute, out var a)) throw Error($"attribute `{get.Attribute}` not found");
        if (a.Required || c.Contains(new Capability(get.Operand, get.Attribute, null))) return a.Type;
        throw Error($"optional attribute `{get.Attribute}` accessed without a `has` guard");
    }

    private CType TypeOfCall(ExtCallExpr call, Caps c)
    {
        var types = new CType[call.Arguments.Length];
        for (var i = 0; i < types.Length; i++) types[i] = TypeOf(call.Arguments[i], c).Type;
        var f = call.Function;
        if (types.Length != ExtFunctions.Arity(f)) throw Error($"wrong number of arguments to {f}");
        if (ExtFunctions.IsConstructor(f))
        {
            // Strict mode requires constructor arguments to be valid string literals.
            if (call.Arguments[0] is LiteralExpr { Value: StringValue s } && ExtFunctions.Construct(f, s.Value) is { } v)
                return new ExtType(v.TypeName);
            throw Error($"invalid or non-literal argument to {f}");
        }
        static bool Is(CType t, string name) => t is ExtType e && e.Name == name;
        return f switch
        {
            ExtFunction.LessThan or ExtFunction.LessThanOrEqual or ExtFunction.GreaterThan or ExtFunction.GreaterThanOrEqual
                when Is(types[0], "decimal") && Is(types[1], "decimal") => CType.AnyBool,
            ExtFunction.IsIpv4 or ExtFunction.IsIpv6 or ExtFunction.IsLoopback or ExtFunction.IsMulticast
                when Is(types[0], "ipaddr") => CType.AnyBool,
            ExtFunction.IsInRange when Is(types[0], "ipaddr") && Is(types[1], "ipaddr") => CType.AnyBool,
            ExtFunction.Offset when Is(types[0], "datetime") && Is(types[1], "duration") => new ExtType("datetime"),
            ExtFunction.DurationSince when Is(types[0], "datetime") && Is(types[1], "datetime") => new ExtType("duration"),
            ExtFunction.ToDate when Is(types[0], "datetime") => new ExtType("datetime"),
            ExtFunction.ToTime when Is(types[0], "datetime") => new ExtType("duration"),
            ExtFunction.ToMilliseconds or ExtFunction.ToSeconds or ExtFunction.ToMinutes or ExtFunction.ToHours or ExtFunction.ToDays
                when Is(types[0], "duration") => CType.Long,
            _ => throw Error($"wrong argument types for {f}"),
        };
    }
}

/// <summary>Structural equality of expressions, used to match capabilities against later accesses.</summary>
internal static class ExprEquality
{
    public static bool Equal(Expr a, Expr b)
    {
        if (ReferenceEquals(a, b)) return true;
        return (a, b) switch
        {
            (LiteralExpr x, LiteralExpr y) => x.Value.Equals(y.Value),
            (VarExpr x, VarExpr y) => x.Var == y.Var,
            (SlotExpr x, SlotExpr y) => x.Slot == y.Slot,
            (IfExpr x, IfExpr y) => Equal(x.Condition, y.Condition) && Equal(x.Then, y.Then) && Equal(x.Else, y.Else),
            (AndExpr x, AndExpr y) => Equal(x.Left, y.Left) && Equal(x.Right, y.Right),
            (OrExpr x, OrExpr y) => Equal(x.Left, y.Left) && Equal(x.Right, y.Right),
            (UnaryExpr x, UnaryExpr y) => x.Op == y.Op && Equal(x.Operand, y.Operand),
            (LikeExpr x, LikeExpr y) => x.Pattern.Elements.SequenceEqual(y.Pattern.Elements) && Equal(x.Operand, y.Operand),
            (IsExpr x, IsExpr y) => x.EntityType == y.EntityType && Equal(x.Operand, y.Operand),
            (BinaryExpr x, BinaryExpr y) => x.Op == y.Op && Equal(x.Left, y.Left) && Equal(x.Right, y.Right),
            (HasAttrExpr x, HasAttrExpr y) => x.Attribute == y.Attribute && Equal(x.Operand, y.Operand),
            (GetAttrExpr x, GetAttrExpr y) => x.Attribute == y.Attribute && Equal(x.Operand, y.Operand),
            (SetExpr x, SetExpr y) => AllEqual(x.Elements, y.Elements),
            (RecordExpr x, RecordExpr y) => x.Fields.Length == y.Fields.Length
                && x.Fields.Zip(y.Fields).All(p => p.First.Key == p.Second.Key && Equal(p.First.Value, p.Second.Value)),
            (ExtCallExpr x, ExtCallExpr y) => x.Function == y.Function && AllEqual(x.Arguments, y.Arguments),
            _ => false,
        };
    }

    private static bool AllEqual(Expr[] a, Expr[] b)
    {
        if (a.Length != b.Length) return false;
        for (var i = 0; i < a.Length; i++)
            if (!Equal(a[i], b[i])) return false;
        return true;
    }
}
