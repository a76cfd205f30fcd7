using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Values;

namespace Identity.Policy.Ast;

public enum Effect { Permit, Forbid }

public enum ScopeKind { Any, Eq, In, Is, IsIn, InList }

/// <summary>One of a policy's three scope constraints (principal, action or resource).</summary>
public sealed class ScopeConstraint
{
    public static readonly ScopeConstraint Any = new(ScopeKind.Any);

    public ScopeConstraint(ScopeKind kind, EntityUid? entity = null, string? entityType = null, EntityUid[]? entities = null, SlotKind? slot = null)
    {
        Kind = kind;
        Entity = entity;
        EntityType = entityType;
        Entities = entities;
        Slot = slot;
    }

    public ScopeKind Kind { get; }

    /// <summary>The entity for <c>==</c>, <c>in</c> and <c>is ... in</c>, once any slot is linked.</summary>
    public EntityUid? Entity { get; }

    /// <summary>The type for <c>is</c> and <c>is ... in</c>.</summary>
    public string? EntityType { get; }

    /// <summary>The list for <c>action in [...]</c>.</summary>
    public EntityUid[]? Entities { get; }

    /// <summary>The template slot used instead of <see cref="Entity"/>, in an unlinked template.</summary>
    public SlotKind? Slot { get; }

    public bool Matches(EntityUid value, EntityStore store)
    {
        switch (Kind)
        {
            case ScopeKind.Any:
                return true;
            case ScopeKind.Eq:
                return value.Equals(Linked());
            case ScopeKind.In:
                return store.IsDescendantOrSelf(value, Linked());
            case ScopeKind.Is:
                return string.Equals(value.Type, EntityType, StringComparison.Ordinal);
            case ScopeKind.IsIn:
                return string.Equals(value.Type, EntityType, StringComparison.Ordinal) && store.IsDescendantOrSelf(value, Linked());
            default:
                foreach (var e in Entities!)
                    if (store.IsDescendantOrSelf(value, e)) return true;
                return false;
        }
    }

    private EntityUid Linked() => Entity ?? throw new EvaluationException("unlinked template slot");

    /// <summary>Replaces the slot by its value from a template link.</summary>
    public ScopeConstraint Link(IReadOnlyDictionary<SlotKind, EntityUid> values)
    {
        if (Slot is not { } slot) return this;
        if (!values.TryGetValue(slot, out var uid))
            throw new PolicyFormatException($"no value given for slot ?{slot.ToString().ToLowerInvariant()}");
        return new ScopeConstraint(Kind, uid, EntityType, Entities);
    }

    /// <summary>The constraint as an expression on <paramref name="var"/>, as the validator sees it.</summary>
    public Expr ToExpr(Var var)
    {
        var v = new VarExpr(var);
        Expr Target() => Slot is { } s ? new SlotExpr(s) : new LiteralExpr(Entity!);
        return Kind switch
        {
            ScopeKind.Any => new LiteralExpr(BoolValue.True),
            ScopeKind.Eq => new BinaryExpr(BinaryOp.Eq, v, Target()),
            ScopeKind.In => new BinaryExpr(BinaryOp.In, v, Target()),
            ScopeKind.Is => new IsExpr(v, EntityType!),
            ScopeKind.IsIn => new AndExpr(new IsExpr(v, EntityType!), new BinaryExpr(BinaryOp.In, v, Target())),
            _ => new BinaryExpr(BinaryOp.In, v, new SetExpr(Array.ConvertAll(Entities!, e => (Expr)new LiteralExpr(e)))),
        };
    }
}

/// <summary>A <c>when</c> or <c>unless</c> clause.</summary>
public sealed record Condition(bool IsWhen, Expr Body);

/// <summary>A policy, or a template when its scope contains slots.</summary>
public sealed class CedarPolicy
{
    public CedarPolicy(string id, Effect effect, ScopeConstraint principal, ScopeConstraint action, ScopeConstraint resource,
        IReadOnlyList<Condition> conditions, IReadOnlyDictionary<string, string> annotations)
    {
        Id = id;
        Effect = effect;
        Principal = principal;
        Action = action;
        Resource = resource;
        Conditions = conditions;
        Annotations = annotations;
    }

    public string Id { get; }
    public Effect Effect { get; }
    public ScopeConstraint Principal { get; }
    public ScopeConstraint Action { get; }
    public ScopeConstraint Resource { get; }
    public IReadOnlyList<Condition> Conditions { get; }
    public IReadOnlyDictionary<string, string> Annotations { get; }

    /// <summary>Linked-from template id, for policies created by <see cref="Link"/>.</summary>
    public string? TemplateId { get; private init; }

    public bool IsTemplate => Principal.Slot is not null || Resource.Slot is not null;

    /// <summary>
    /// True when the request satisfies scope and conditions. Throws <see cref="EvaluationException"/> when a
    /// condition errors or is not boolean.
    /// </summary>
    public bool Evaluate(EvaluationContext ctx)
    {
        var request = ctx.Request;
        if (!Principal.Matches(request.Principal, ctx.Entities)
            || !Action.Matches(request.Action, ctx.Entities)
            || !Resource.Matches(request.Resource, ctx.Entities))
            return false;
        var conditions = Conditions;
        for (var i = 0; i < conditions.Count; i++)
        {
            var c = conditions[i];
            if (Expr.AsBool(c.Body.Evaluate(ctx)) != c.IsWhen) return false;
        }
        return true;
    }

    /// <summary>Creates a static policy from this template by filling its slots.</summary>
    public CedarPolicy Link(string newId, IReadOnlyDictionary<SlotKind, EntityUid> values) =>
        new(newId, Effect, Principal.Link(values), Action, Resource.Link(values), Conditions, Annotations) { TemplateId = Id };

    /// <summary>The whole policy as one boolean expression (scope, then conditions), as the validator sees it.</summary>
    public Expr ToExpr()
    {
        Expr? cond = null;
        for (var i = Conditions.Count - 1; i >= 0; i--)
        {
            var c = Conditions[i];
            var e = c.IsWhen ? c.Body : new UnaryExpr(UnaryOp.Not, c.Body);
            cond = cond is null ? e : new AndExpr(e, cond);
        }
        cond ??= new LiteralExpr(BoolValue.True);
        return new AndExpr(Principal.ToExpr(Var.Principal), new AndExpr(Action.ToExpr(Var.Action), new AndExpr(Resource.ToExpr(Var.Resource), cond)));
    }
}
