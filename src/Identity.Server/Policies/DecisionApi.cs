using System.Text.Json;
using Identity.Policy;
using Identity.Policy.Entities;
using Identity.Policy.Values;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Hosting;

namespace Identity.Server.Policies;

/// <summary>
/// Authorization decisions for resource servers: the seed's <c>POST /v1/authorize</c> and the same decisions
/// through the OpenID AuthZEN Authorization API 1.0. Callers are services: a client credentials token for the
/// identity audience (<see cref="ServerApi.ServicePolicy"/>).
/// </summary>
public static class DecisionApi
{
    public sealed record ErrorView(string Policy, string Message);
    public sealed record AuthorizeResponse(string Decision, IReadOnlyList<string> Reasons, IReadOnlyList<ErrorView> Errors, string RequestId);
    public sealed record AuthZenContext(IReadOnlyList<string> Reasons, IReadOnlyList<ErrorView> Errors);
    public sealed record AuthZenDecision(bool Decision, AuthZenContext Context);
    public sealed record AuthZenBatch(IReadOnlyList<AuthZenDecision> Evaluations);

    /// <summary>A batch larger than this is refused: each evaluation reads the database.</summary>
    public const int MaxEvaluations = 100;

    public static IEndpointRouteBuilder MapPolicyDecisions(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/authorize", Authorize).RequireAuthorization(ServerApi.ServicePolicy).WithTags("Policies")
            .WithSummary("Decide whether a principal may do an action on a resource");
        var authZen = app.MapGroup("/access/v1").RequireAuthorization(ServerApi.ServicePolicy).WithTags("AuthZEN");
        authZen.MapPost("/evaluation", Evaluation).WithSummary("AuthZEN 1.0 access evaluation");
        authZen.MapPost("/evaluations", Evaluations).WithSummary("AuthZEN 1.0 batch access evaluations");
        app.MapGet("/.well-known/authzen-configuration", (HttpContext http) =>
        {
            var root = $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}";
            return Results.Ok(new
            {
                policy_decision_point = root,
                access_evaluation_endpoint = root + "/access/v1/evaluation",
                access_evaluations_endpoint = root + "/access/v1/evaluations",
            });
        }).AllowAnonymous().WithTags("AuthZEN").WithSummary("AuthZEN policy decision point metadata");
        return app;
    }

    static async Task<IResult> Authorize(HttpContext http, IdentityDbContext db, ActivePolicies active, DirectoryFacts facts)
    {
        try
        {
            var body = await ReadObjectAsync(http);
            var resource = Required(body, "resource");
            var request = new DecisionRequest(
                EntityJson.ParseUid(Required(body, "principal")),
                EntityJson.ParseUid(Required(body, "action")),
                EntityJson.ParseUid(resource),
                Optional(resource, "attributes"),
                Optional(body, "context"),
                Optional(body, "entities"));
            var result = await Decisions.DecideAsync(request, db, active, facts, http.RequestAborted);
            return Results.Ok(new AuthorizeResponse(result.Decision.ToString(), result.Reasons, Errors(result), http.TraceIdentifier));
        }
        catch (PolicyFormatException ex)
        {
            return Invalid(http, ex);
        }
    }

    static async Task<IResult> Evaluation(HttpContext http, IdentityDbContext db, ActivePolicies active, DirectoryFacts facts)
    {
        try
        {
            var body = await ReadObjectAsync(http);
            return Results.Ok(await EvaluateAsync(FromAuthZen(body, defaults: null), db, active, facts, http.RequestAborted));
        }
        catch (PolicyFormatException ex)
        {
            return Invalid(http, ex);
        }
    }

    /// <summary>
    /// Each item of <c>evaluations</c> overrides the top-level subject, action, resource and context.
    /// <c>options.evaluations_semantic</c> may stop at the first deny or the first permit; without items, the
    /// request is a single evaluation.
    /// </summary>
    static async Task<IResult> Evaluations(HttpContext http, IdentityDbContext db, ActivePolicies active, DirectoryFacts facts)
    {
        try
        {
            var body = await ReadObjectAsync(http);
            var items = Optional(body, "evaluations");
            if (items.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null || (items.ValueKind == JsonValueKind.Array && items.GetArrayLength() == 0))
                return Results.Ok(await EvaluateAsync(FromAuthZen(body, defaults: null), db, active, facts, http.RequestAborted));
            if (items.ValueKind != JsonValueKind.Array)
                throw new PolicyFormatException("evaluations must be an array");
            if (items.GetArrayLength() > MaxEvaluations)
                throw new PolicyFormatException($"at most {MaxEvaluations} evaluations per request");

            var semantic = Optional(Optional(body, "options"), "evaluations_semantic") is { ValueKind: JsonValueKind.String } s ? s.GetString() : "execute_all";
            if (semantic is not ("execute_all" or "deny_on_first_deny" or "permit_on_first_permit"))
                throw new PolicyFormatException("options.evaluations_semantic must be execute_all, deny_on_first_deny or permit_on_first_permit");

            var requests = items.EnumerateArray().Select(item => FromAuthZen(item, body)).ToList();
            var decisions = new List<AuthZenDecision>();
            foreach (var request in requests)
            {
                var decision = await EvaluateAsync(request, db, active, facts, http.RequestAborted);
                decisions.Add(decision);
                if ((semantic == "deny_on_first_deny" && !decision.Decision) || (semantic == "permit_on_first_permit" && decision.Decision))
                    break;
            }
            return Results.Ok(new AuthZenBatch(decisions));
        }
        catch (PolicyFormatException ex)
        {
            return Invalid(http, ex);
        }
    }

    static async Task<AuthZenDecision> EvaluateAsync(DecisionRequest request, IdentityDbContext db, ActivePolicies active, DirectoryFacts facts,
        CancellationToken cancellationToken)
    {
        var result = await Decisions.DecideAsync(request, db, active, facts, cancellationToken);
        return new AuthZenDecision(result.Decision == Decision.Allow, new AuthZenContext(result.Reasons, Errors(result)));
    }

    /// <summary>
    /// AuthZEN's subject/resource {type, id, properties} and action {name}, with types matched to the schema's
    /// ignoring case ("user" is User). Subject properties are ignored: a principal's facts come from the database.
    /// </summary>
    static DecisionRequest FromAuthZen(JsonElement item, JsonElement? defaults)
    {
        if (item.ValueKind != JsonValueKind.Object)
            throw new PolicyFormatException("an evaluation must be an object");
        JsonElement Field(string name) =>
            Optional(item, name) is { ValueKind: not JsonValueKind.Undefined } own ? own
            : defaults is { } d && Optional(d, name) is { ValueKind: not JsonValueKind.Undefined } inherited ? inherited
            : throw new PolicyFormatException($"{name} is required");

        var subject = Field("subject");
        var resource = Field("resource");
        var action = Field("action");
        if (Optional(action, "name") is not { ValueKind: JsonValueKind.String } name || name.GetString() is not { Length: > 0 } actionName)
            throw new PolicyFormatException("action.name is required");
        var context = Optional(item, "context") is { ValueKind: not JsonValueKind.Undefined } own ? own
            : defaults is { } d ? Optional(d, "context") : default;
        return new DecisionRequest(Typed(subject, "subject"), new EntityUid("Action", actionName), Typed(resource, "resource"),
            Optional(resource, "properties"), context);
    }

    static EntityUid Typed(JsonElement json, string what) =>
        Optional(json, "type") is { ValueKind: JsonValueKind.String } type && Optional(json, "id") is { ValueKind: JsonValueKind.String } id
            ? new EntityUid(ServerSchema.Canonical(type.GetString()!), id.GetString()!)
            : throw new PolicyFormatException($"{what} needs string fields type and id");

    static IReadOnlyList<ErrorView> Errors(AuthorizationResult result) =>
        result.Errors.Select(e => new ErrorView(e.PolicyId, e.Message)).ToList();

    static async Task<JsonElement> ReadObjectAsync(HttpContext http)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
            if (!JsonText.IsWellFormed(document.RootElement))
                throw new PolicyFormatException("the body is not valid JSON: a string holds an unpaired surrogate");
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? document.RootElement.Clone()
                : throw new PolicyFormatException("the body must be a JSON object");
        }
        catch (JsonException ex)
        {
            throw new PolicyFormatException($"the body is not valid JSON: {ex.Message}");
        }
    }

    static JsonElement Required(JsonElement json, string name) =>
        Optional(json, name) is { ValueKind: not (JsonValueKind.Undefined or JsonValueKind.Null) } value ? value
            : throw new PolicyFormatException($"{name} is required");

    static JsonElement Optional(JsonElement json, string name) =>
        json.ValueKind == JsonValueKind.Object && json.TryGetProperty(name, out var value) ? value : default;

    internal static IResult Invalid(HttpContext http, PolicyFormatException ex) =>
        ApiErrors.Result(http, StatusCodes.Status400BadRequest, "INVALID_REQUEST", ex.Message,
            ex.Line > 0 ? new { line = ex.Line, column = ex.Column } : null);
}
