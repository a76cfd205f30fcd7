using Identity.Policy.Ast;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;

namespace Identity.Policy;

public enum Decision { Deny, Allow }

/// <summary>A policy that could not be evaluated for a request, and why.</summary>
public sealed record PolicyError(string PolicyId, string Message);

/// <summary>
/// The outcome of an authorization: the decision, the policies that determined it (the satisfied forbids on a
/// deny caused by a forbid, otherwise the satisfied permits) and the policies that failed to evaluate.
/// </summary>
public sealed record AuthorizationResult(Decision Decision, IReadOnlyList<string> Reasons, IReadOnlyList<PolicyError> Errors);

public static class Authorizer
{
    private static readonly string[] None = [];
    private static readonly PolicyError[] NoErrors = [];

    /// <summary>Allow iff some permit is satisfied and no forbid is; erroring policies are skipped and reported.</summary>
    public static AuthorizationResult IsAuthorized(Request request, EntityStore entities, PolicySet policies)
    {
        var ctx = new EvaluationContext(request, entities);
        List<string>? permits = null, forbids = null;
        List<PolicyError>? errors = null;
        var list = policies.Policies;
        for (var i = 0; i < list.Count; i++)
        {
            var policy = list[i];
            bool satisfied;
            try
            {
                satisfied = policy.Evaluate(ctx);
            }
            catch (EvaluationException ex)
            {
                (errors ??= []).Add(new PolicyError(policy.Id, ex.Message));
                continue;
            }
            if (!satisfied) continue;
            if (policy.Effect == Effect.Permit) (permits ??= []).Add(policy.Id);
            else (forbids ??= []).Add(policy.Id);
        }
        IReadOnlyList<PolicyError> errs = errors is null ? NoErrors : errors;
        if (forbids is not null) return new AuthorizationResult(Decision.Deny, forbids, errs);
        if (permits is not null) return new AuthorizationResult(Decision.Allow, permits, errs);
        return new AuthorizationResult(Decision.Deny, None, errs);
    }
}
