using Identity.Policy.Entities;
using Identity.Policy.Values;

namespace Identity.Policy.Evaluation;

/// <summary>An authorization request: who does what to which resource, in which context.</summary>
public sealed class Request(EntityUid principal, EntityUid action, EntityUid resource, RecordValue? context = null)
{
    public EntityUid Principal { get; } = principal;
    public EntityUid Action { get; } = action;
    public EntityUid Resource { get; } = resource;
    public RecordValue Context { get; } = context ?? RecordValue.Empty;
}

/// <summary>What an expression is evaluated against: one request and the entity store.</summary>
public sealed class EvaluationContext(Request request, EntityStore entities)
{
    public Request Request { get; } = request;
    public EntityStore Entities { get; } = entities;
}

/// <summary>A Cedar evaluation error (type error, overflow, missing attribute, ...). The policy is skipped.</summary>
public sealed class EvaluationException(string message) : Exception(message)
{
    internal static EvaluationException TypeError(string expected, Value actual) =>
        new($"type error: expected {expected}, got {actual.TypeName}");
}
