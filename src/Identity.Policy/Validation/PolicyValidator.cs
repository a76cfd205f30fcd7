using Identity.Policy.Ast;
using Identity.Policy.Schema;
using Identity.Policy.Values;

namespace Identity.Policy.Validation;

/// <summary>The outcome of validating a policy set against a schema.</summary>
public sealed record ValidationResult(IReadOnlyList<string> Errors)
{
    public bool IsValid => Errors.Count == 0;
}

/// <summary>
/// Strict-mode validation of policies against a schema: every entity type, action and enumerated entity must be
/// declared; some action in the scope must apply to the scope's principal and resource types; and the policy must
/// type-check to a boolean in every request environment the schema allows.
/// </summary>
public static class PolicyValidator
{
    public static ValidationResult Validate(CedarSchema schema, PolicySet policies)
    {
        var errors = new List<string>();
        var envs = Environments(schema);
        foreach (var policy in policies.Policies)
        {
            if (policy.TemplateId is null) ValidatePolicy(schema, envs, policy, errors);
            else ValidateLink(schema, policy, errors);
        }
        foreach (var template in policies.Templates) ValidatePolicy(schema, envs, template, errors);
        return new ValidationResult(errors);
    }

    private static List<RequestEnv> Environments(CedarSchema schema)
    {
        var envs = new List<RequestEnv>();
        foreach (var action in schema.Actions.Values)
        {
            var context = RecordType.FromSchema(action.Context);
            foreach (var p in action.Principals)
                foreach (var r in action.Resources)
                    envs.Add(new RequestEnv(p, action.Uid, r, context));
        }
        return envs;
    }

    private static void ValidatePolicy(CedarSchema schema, List<RequestEnv> envs, CedarPolicy policy, List<string> errors)
    {
        var before = errors.Count;
        var expr = policy.ToExpr();
        CheckEntityReferences(schema, expr, policy.Id, errors);
        CheckActionApplication(schema, policy, errors);
        if (errors.Count > before) return;
        foreach (var env in envs)
        {
            try
            {
                var type = new Typechecker(schema, env).Check(expr);
                if (type is not BoolType) errors.Add($"policy `{policy.Id}`: expected a boolean, found {type}");
            }
            catch (TypeErrorException ex)
            {
                errors.Add($"policy `{policy.Id}` (principal {env.Principal}, action {env.Action}, resource {env.Resource}): {ex.Message}");
                return;
            }
        }
    }

    private static void ValidateLink(CedarSchema schema, CedarPolicy policy, List<string> errors)
    {
        foreach (var uid in new[] { policy.Principal.Entity, policy.Resource.Entity })
            if (uid is not null && !schema.EntityTypes.ContainsKey(uid.Type) && !schema.ActionTypes.Contains(uid.Type))
                errors.Add($"policy `{policy.Id}`: unrecognized entity type `{uid.Type}`");
        CheckActionApplication(schema, policy, errors);
    }

    /// <summary>Entity types, actions and enumerated ids referenced anywhere in the policy must be declared.</summary>
    private static void CheckEntityReferences(CedarSchema schema, Expr expr, string id, List<string> errors)
    {
        bool KnownType(string t) => schema.EntityTypes.ContainsKey(t) || schema.ActionTypes.Contains(t);
        ExprWalker.Visit(expr, e =>
        {
            switch (e)
            {
                case LiteralExpr { Value: EntityUid uid }:
                    if (!KnownType(uid.Type)) errors.Add($"policy `{id}`: unrecognized entity type `{uid.Type}`");
                    else if (!schema.IsKnownEntity(uid))
                        errors.Add($"policy `{id}`: unrecognized entity {uid}");
                    break;
                case IsExpr { EntityType: var t } when !KnownType(t):
                    errors.Add($"policy `{id}`: unrecognized entity type `{t}`");
                    break;
            }
        });
    }

    /// <summary>Some action allowed by the action scope must apply to principal and resource types allowed by theirs.</summary>
    private static void CheckActionApplication(CedarSchema schema, CedarPolicy policy, List<string> errors)
    {
        var principals = TypesSatisfying(schema, policy.Principal);
        var resources = TypesSatisfying(schema, policy.Resource);
        foreach (var action in ActionsSatisfying(schema, policy.Action))
        {
            if (action.Principals.Any(principals.Contains) && action.Resources.Any(resources.Contains)) return;
        }
        errors.Add($"policy `{policy.Id}`: unable to find an applicable action given the policy scope constraints");
    }

    private static HashSet<string> TypesSatisfying(CedarSchema schema, ScopeConstraint scope)
    {
        IEnumerable<string> TypesIn(string ancestor) =>
            schema.EntityTypes.Values.Where(d => d.Name == ancestor || d.AncestorTypes.Contains(ancestor)).Select(d => d.Name);
        var result = scope.Kind switch
        {
            ScopeKind.Eq when scope.Entity is not null => [scope.Entity.Type],
            ScopeKind.In when scope.Entity is not null => TypesIn(scope.Entity.Type),
            ScopeKind.Is => schema.EntityTypes.ContainsKey(scope.EntityType!) ? [scope.EntityType!] : [],
            ScopeKind.IsIn when scope.Entity is not null => TypesIn(scope.Entity.Type).Where(t => t == scope.EntityType),
            ScopeKind.IsIn => schema.EntityTypes.ContainsKey(scope.EntityType!) ? [scope.EntityType!] : [],
            _ => schema.EntityTypes.Keys,
        };
        return new HashSet<string>(result, StringComparer.Ordinal);
    }

    private static IEnumerable<ActionDefinition> ActionsSatisfying(CedarSchema schema, ScopeConstraint scope)
    {
        switch (scope.Kind)
        {
            case ScopeKind.Eq:
                return schema.Actions.TryGetValue(scope.Entity!, out var a) ? [a] : [];
            case ScopeKind.In:
            case ScopeKind.InList:
            {
                var groups = scope.Kind == ScopeKind.In ? [scope.Entity!] : scope.Entities!;
                if (groups.Any(g => !schema.Actions.ContainsKey(g))) return [];
                return schema.Actions.Values.Where(d => groups.Any(g => d.Uid.Equals(g) || d.Ancestors.Contains(g)));
            }
            default:
                return schema.Actions.Values;
        }
    }
}
