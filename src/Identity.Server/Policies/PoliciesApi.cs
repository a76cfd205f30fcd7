using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Policy;
using Identity.Policy.Entities;
using Identity.Policy.Evaluation;
using Identity.Policy.Schema;
using Identity.Policy.Validation;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Roles;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Policies;

/// <summary>
/// /api/v1/policies: the stored Cedar policies that /v1/authorize and AuthZEN decide with, the schema they are
/// validated against, and a test bench that evaluates a policy set given in the request, apart from the stored one.
/// A write that does not parse or validate changes nothing; one that does applies to the next decision.
/// </summary>
public static partial class PoliciesApi
{
    public const int MaxPolicyLength = 16 * 1024;

    public sealed record PolicyView(string Id, string? Description, string Policy, bool Enabled, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);
    public sealed record PolicyList(IReadOnlyList<PolicyView> Policies);
    public sealed record PolicyRequest(string? Id, string? Description, string? Policy, bool? Enabled);
    public sealed record SchemaView(string Format, string Schema);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    private static partial Regex PolicyId();

    public static IEndpointRouteBuilder MapPoliciesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/policies").WithTags("Policies").RequireAuthorization(ServerApi.Policy);
        api.MapGet("/", List).RequirePermission(Permissions.PoliciesRead).WithSummary("List the stored policies");
        api.MapGet("/schema", () => Results.Ok(new SchemaView("cedar", ServerSchema.Text)))
            .RequirePermission(Permissions.PoliciesRead).WithSummary("The Cedar schema stored policies are validated against");
        api.MapPost("/evaluate", Evaluate).RequirePermission(Permissions.PoliciesRead)
            .WithSummary("Evaluate a policy set, entities and requests given in the body (the stored policies are not used)");
        api.MapGet("/{id}", Get).RequirePermission(Permissions.PoliciesRead).WithSummary("A stored policy");
        api.MapPost("/", Create).RequirePermission(Permissions.PoliciesWrite).WithSummary("Add a policy");
        api.MapPut("/{id}", Update).RequirePermission(Permissions.PoliciesWrite).WithSummary("Change a policy");
        api.MapDelete("/{id}", Delete).RequirePermission(Permissions.PoliciesWrite).WithSummary("Delete a policy");
        return app;
    }

    static async Task<IResult> List(IdentityDbContext db) =>
        Results.Ok(new PolicyList((await db.StoredPolicies.AsNoTracking().OrderBy(p => p.Id).ToListAsync()).Select(View).ToList()));

    static async Task<IResult> Get(HttpContext http, string id, IdentityDbContext db) =>
        await db.StoredPolicies.AsNoTracking().FirstOrDefaultAsync(p => p.Id == id) is { } policy
            ? Results.Ok(View(policy))
            : NotFound(http, id);

    static async Task<IResult> Create(HttpContext http, PolicyRequest body, IdentityDbContext db, ActivePolicies active, SecurityEvents events)
    {
        var id = body.Id?.Trim() ?? $"policy-{Guid.NewGuid():N}";
        if (!PolicyId().IsMatch(id))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "id must be 1-128 characters: letters, digits, and _ . : - (not first).", new { field = "id" });
        if (body.Policy is null)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "policy (Cedar text) is required.", new { field = "policy" });
        if (Check(http, id, body.Policy, body.Description) is { } invalid)
            return invalid;
        if (await db.StoredPolicies.AnyAsync(p => p.Id == id))
            return ApiErrors.Result(http, 409, "CONFLICT", $"A policy with id '{id}' exists.", new { field = "id" });

        var policy = new StoredPolicy { Id = id, Description = body.Description, Text = body.Policy, Enabled = body.Enabled ?? true };
        db.StoredPolicies.Add(policy);
        await events.RaiseAsync(EventTypes.PolicyCreated, null, new { policy = id, enabled = policy.Enabled });
        await db.SaveChangesAsync();
        active.Invalidate();
        return Results.Created($"/api/v1/policies/{id}", View(policy));
    }

    /// <summary>Fields left out keep their value.</summary>
    static async Task<IResult> Update(HttpContext http, string id, PolicyRequest body, IdentityDbContext db, ActivePolicies active, SecurityEvents events)
    {
        var policy = await db.StoredPolicies.FirstOrDefaultAsync(p => p.Id == id);
        if (policy is null)
            return NotFound(http, id);
        if (body.Id is not null && body.Id != id)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "A policy's id cannot change; create a new one.", new { field = "id" });
        if (Check(http, id, body.Policy ?? policy.Text, body.Description) is { } invalid)
            return invalid;

        policy.Text = body.Policy ?? policy.Text;
        policy.Description = body.Description ?? policy.Description;
        policy.Enabled = body.Enabled ?? policy.Enabled;
        policy.UpdatedAt = DateTimeOffset.UtcNow;
        await events.RaiseAsync(EventTypes.PolicyUpdated, null, new { policy = id, enabled = policy.Enabled });
        await db.SaveChangesAsync();
        active.Invalidate();
        return Results.Ok(View(policy));
    }

    static async Task<IResult> Delete(HttpContext http, string id, IdentityDbContext db, ActivePolicies active, SecurityEvents events)
    {
        var policy = await db.StoredPolicies.FirstOrDefaultAsync(p => p.Id == id);
        if (policy is null)
            return NotFound(http, id);
        db.StoredPolicies.Remove(policy);
        await events.RaiseAsync(EventTypes.PolicyDeleted, null, new { policy = id });
        await db.SaveChangesAsync();
        active.Invalidate();
        return Results.NoContent();
    }

    /// <summary>The 400 for text that does not parse (with line and column) or does not validate against the server schema; null if fine.</summary>
    static IResult? Check(HttpContext http, string id, string text, string? description)
    {
        if (FreeText.Problem(description, "description", 1024, multiline: true) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem, new { field = "description" });
        if (text.Length > MaxPolicyLength)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", $"The policy is longer than {MaxPolicyLength} characters.", new { field = "policy" });
        var set = new PolicySet();
        try
        {
            set.Add(ActivePolicies.Compile(id, text));
        }
        catch (PolicyFormatException ex)
        {
            return ApiErrors.Result(http, 400, "INVALID_POLICY", $"The policy is not valid Cedar: {ex.Message}",
                new { field = "policy", message = ex.Message, line = ex.Line, column = ex.Column });
        }
        var validation = PolicyValidator.Validate(ServerSchema.Schema, set);
        return validation.IsValid ? null
            : ApiErrors.Result(http, 400, "INVALID_POLICY", $"The policy does not validate against the server schema: {validation.Errors[0]}",
                new { field = "policy", message = validation.Errors[0], errors = validation.Errors });
    }

    static IResult NotFound(HttpContext http, string id) =>
        ApiErrors.Result(http, 404, "NOT_FOUND", $"No policy with id '{id}'.");

    static PolicyView View(StoredPolicy p) => new(p.Id, p.Description, p.Text, p.Enabled, p.CreatedAt, p.UpdatedAt);

    /// <summary>
    /// One file in the format of the Cedar conformance corpus (policies, entities, schema, policyIds,
    /// templateLinks, schemaForAuthorization, requests), expectations ignored: each request's decision, reasons and
    /// erroring policy ids in request order, and the strict validation verdict when a schema is given.
    /// </summary>
    static IResult Evaluate(HttpContext http, JsonElement body)
    {
        try
        {
            if (body.ValueKind != JsonValueKind.Object)
                throw new PolicyFormatException("the body must be a JSON object");
            CedarSchema? schema = body.TryGetProperty("schema", out var schemaJson) ? schemaJson.ValueKind switch
            {
                JsonValueKind.String => CedarSchema.Parse(schemaJson.GetString()!),
                JsonValueKind.Object => CedarSchema.FromJson(schemaJson),
                JsonValueKind.Null => null,
                _ => throw new PolicyFormatException("schema must be Cedar schema text or a JSON schema object"),
            } : null;

            var idMode = body.TryGetProperty("policyIds", out var ids) && ids.ValueKind == JsonValueKind.String && ids.GetString() == "idAnnotation"
                ? PolicyIdMode.IdAnnotation : PolicyIdMode.Index;
            if (!body.TryGetProperty("policies", out var text) || text.ValueKind != JsonValueKind.String)
                throw new PolicyFormatException("policies (Cedar policy text) is required");
            var policies = PolicySet.Parse(text.GetString()!, idMode);
            if (body.TryGetProperty("templateLinks", out var links) && links.ValueKind == JsonValueKind.Array)
                foreach (var link in links.EnumerateArray())
                {
                    var values = new Dictionary<Identity.Policy.Ast.SlotKind, Identity.Policy.Values.EntityUid>();
                    foreach (var slot in link.GetProperty("values").EnumerateObject())
                        values[slot.Name switch
                        {
                            "?principal" => Identity.Policy.Ast.SlotKind.Principal,
                            "?resource" => Identity.Policy.Ast.SlotKind.Resource,
                            _ => throw new PolicyFormatException($"unknown template slot {slot.Name}"),
                        }] = EntityJson.ParseUid(slot.Value);
                    policies.Link(link.GetProperty("templateId").GetString()!, link.GetProperty("newId").GetString()!, values);
                }

            var validation = schema is null ? null : PolicyValidator.Validate(schema, policies);
            var authSchema = body.TryGetProperty("schemaForAuthorization", out var forAuth) && forAuth.ValueKind == JsonValueKind.False ? null : schema;
            var entities = body.TryGetProperty("entities", out var entitiesJson)
                ? EntityJson.ParseEntities(entitiesJson, authSchema)
                : EntityJson.ParseEntities(JsonDocument.Parse("[]").RootElement, authSchema);

            var results = new List<object>();
            var requests = body.TryGetProperty("requests", out var given) ? given : default;
            if (requests.ValueKind is not (JsonValueKind.Array or JsonValueKind.Undefined))
                throw new PolicyFormatException("requests must be an array");
            if (requests.ValueKind == JsonValueKind.Array)
                foreach (var item in requests.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("principal", out var principal) ||
                        !item.TryGetProperty("action", out var actionJson) || !item.TryGetProperty("resource", out var resource))
                        throw new PolicyFormatException("each request is an object with principal, action and resource");
                    var action = EntityJson.ParseUid(actionJson);
                    var context = EntityJson.ParseContext(item.TryGetProperty("context", out var c) ? c : default, authSchema, action);
                    var request = new Request(EntityJson.ParseUid(principal), action, EntityJson.ParseUid(resource), context);
                    var result = Authorizer.IsAuthorized(request, entities, policies);
                    results.Add(new
                    {
                        decision = result.Decision == Decision.Allow ? "allow" : "deny",
                        reason = result.Reasons,
                        errors = result.Errors.Select(e => e.PolicyId).Distinct().ToList(),
                        error_messages = result.Errors.Select(e => new DecisionApi.ErrorView(e.PolicyId, e.Message)).ToList(),
                    });
                }
            return Results.Ok(new { results, validation = validation is null ? null : new { valid = validation.IsValid, errors = validation.Errors } });
        }
        catch (PolicyFormatException ex)
        {
            return DecisionApi.Invalid(http, ex);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException)
        {
            // A missing or mistyped field of the file (GetProperty, GetString on the wrong kind).
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", $"The file is malformed: {ex.Message}");
        }
    }
}
