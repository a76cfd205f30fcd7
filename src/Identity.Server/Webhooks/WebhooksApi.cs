using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Roles;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Webhooks;

/// <summary>/api/v1/webhooks: subscriptions in the seed's shape, and every delivery attempt made for them.</summary>
public static class WebhooksApi
{
    public sealed record RetryPolicy(int? MaxAttempts, int? InitialDelay, double? BackoffMultiplier);
    public sealed record WebhookRequest(string? Url, List<string>? Events, string? Secret, RetryPolicy? RetryPolicy, bool? Enabled);
    public sealed record WebhookView(string Id, string Url, IReadOnlyList<string> Events, RetryPolicy RetryPolicy, bool Enabled, string? OrganizationId, DateTimeOffset CreatedAt);
    public sealed record WebhookResponse(WebhookView Webhook);
    public sealed record WebhookList(IReadOnlyList<WebhookView> Webhooks);
    public sealed record AttemptView(int Number, DateTimeOffset AttemptedAt, int? StatusCode, long DurationMs, string? Error);
    public sealed record DeliveryView(long Id, string EventId, string Event, string Status, int Attempts, DateTimeOffset CreatedAt,
        DateTimeOffset? NextAttemptAt, IReadOnlyList<AttemptView> AttemptLog);
    public sealed record DeliveryPage(IReadOnlyList<DeliveryView> Deliveries, int Total, int Page, int Limit);

    public static IEndpointRouteBuilder MapWebhooksApi(this IEndpointRouteBuilder app)
    {
        var hooks = app.MapGroup("/api/v1/webhooks").WithTags("Webhooks").RequireAuthorization(ServerApi.Policy);
        hooks.MapGet("/", List).RequirePermission(Permissions.WebhooksRead).WithSummary("Webhook subscriptions");
        hooks.MapGet("/{id}", Get).RequirePermission(Permissions.WebhooksRead).WithSummary("A webhook subscription");
        hooks.MapPost("/", Create).RequirePermission(Permissions.WebhooksWrite).WithSummary("Subscribe a URL to events");
        hooks.MapPut("/{id}", Update).RequirePermission(Permissions.WebhooksWrite).WithSummary("Change a subscription (secret optional)");
        hooks.MapDelete("/{id}", Delete).RequirePermission(Permissions.WebhooksWrite).WithSummary("Remove a subscription and its deliveries");
        hooks.MapGet("/{id}/deliveries", Deliveries).RequirePermission(Permissions.WebhooksRead).WithSummary("Every delivery and attempt, newest first");
        return app;
    }

    static async Task<IResult> List(Caller caller, IdentityDbContext db) =>
        Results.Ok(new WebhookList((await Visible(db, caller, Permissions.WebhooksRead).OrderBy(w => w.CreatedAt).ToListAsync()).Select(View).ToList()));

    static async Task<IResult> Get(HttpContext http, string id, Caller caller, IdentityDbContext db) =>
        await Visible(db, caller, Permissions.WebhooksRead).FirstOrDefaultAsync(w => w.Id == id) is { } hook
            ? Results.Ok(new WebhookResponse(View(hook))) : ApiErrors.NotFound(http);

    static async Task<IResult> Create(HttpContext http, WebhookRequest body, Caller caller, IdentityDbContext db, IDataProtectionProvider protection,
        IOptions<WebhookOptions> options, IHostEnvironment environment, TimeProvider time, SecurityEvents events)
    {
        if (Problem(body, creating: true, AllowPrivate(options, environment)) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem.Message, new { field = problem.Field });
        var hook = new WebhookSubscription
        {
            Url = body.Url!, Events = "", ProtectedSecret = "", CreatedAt = time.GetUtcNow(),
            // Held through an organization-scoped grant, it hears only that organization's events.
            OrganizationId = caller.Global.Contains(Permissions.WebhooksWrite) ? null : caller.OrganizationId,
        };
        Apply(hook, body, protection);
        db.WebhookSubscriptions.Add(hook);
        await RaiseAsync(events, EventTypes.WebhookCreated, hook);
        await db.SaveChangesAsync();
        return Results.Created($"/api/v1/webhooks/{hook.Id}", new WebhookResponse(View(hook)));
    }

    static async Task<IResult> Update(HttpContext http, string id, WebhookRequest body, Caller caller, IdentityDbContext db,
        IDataProtectionProvider protection, IOptions<WebhookOptions> options, IHostEnvironment environment, SecurityEvents events)
    {
        var hook = await Visible(db, caller, Permissions.WebhooksWrite).FirstOrDefaultAsync(w => w.Id == id);
        if (hook is null)
            return ApiErrors.NotFound(http);
        if (Problem(body, creating: false, AllowPrivate(options, environment)) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem.Message, new { field = problem.Field });
        Apply(hook, body, protection);
        await RaiseAsync(events, EventTypes.WebhookUpdated, hook);
        await db.SaveChangesAsync();
        return Results.Ok(new WebhookResponse(View(hook)));
    }

    static async Task<IResult> Delete(HttpContext http, string id, Caller caller, IdentityDbContext db, SecurityEvents events)
    {
        var hook = await Visible(db, caller, Permissions.WebhooksWrite).FirstOrDefaultAsync(w => w.Id == id);
        if (hook is null)
            return ApiErrors.NotFound(http);
        db.WebhookSubscriptions.Remove(hook);
        await RaiseAsync(events, EventTypes.WebhookDeleted, hook);
        await db.SaveChangesAsync();
        return Results.NoContent();
    }

    /// <summary>
    /// Stored with the change: where events go is security-relevant (a webhook for "*" hears everything). Logged
    /// under the subscription's organization, so that organization's admins see it; the secret never is.
    /// </summary>
    static Task RaiseAsync(SecurityEvents events, string type, WebhookSubscription hook) =>
        events.RaiseAsync(type, new SecurityEvents.Subject(null, OrganizationId: hook.OrganizationId),
            new { webhook = hook.Id, url = hook.Url, events = hook.Events.Split(' '), enabled = hook.Enabled });

    static async Task<IResult> Deliveries(HttpContext http, string id, Caller caller, IdentityDbContext db, string? page, string? limit)
    {
        if (!await Visible(db, caller, Permissions.WebhooksRead).AnyAsync(w => w.Id == id))
            return ApiErrors.NotFound(http);
        if (!Paging.TryRead(page, limit, out var pageNumber, out var pageSize, out var problem))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem!.Value.Message, new { field = problem.Value.Field });

        var query = db.WebhookDeliveries.AsNoTracking().Where(d => d.SubscriptionId == id);
        var total = await query.CountAsync();
        var deliveries = await query.OrderByDescending(d => d.Id).Skip((pageNumber - 1) * pageSize).Take(pageSize).ToListAsync();
        var deliveryIds = deliveries.Select(d => d.Id).ToList();
        var attempts = await db.WebhookAttempts.AsNoTracking().Where(a => deliveryIds.Contains(a.DeliveryId)).OrderBy(a => a.Number).ToListAsync();
        return Results.Ok(new DeliveryPage(deliveries.Select(d => new DeliveryView(d.Id, d.EventId, d.Event, d.Status, d.Attempts, d.CreatedAt, d.NextAttemptAt,
            attempts.Where(a => a.DeliveryId == d.Id).Select(a => new AttemptView(a.Number, a.AttemptedAt, a.StatusCode, a.DurationMs, a.Error)).ToList())).ToList(),
            total, pageNumber, pageSize));
    }

    public static bool AllowPrivate(IOptions<WebhookOptions> options, IHostEnvironment environment) =>
        options.Value.AllowPrivateNetworks ?? environment.IsDevelopment();

    static IQueryable<WebhookSubscription> Visible(IdentityDbContext db, Caller caller, string permission) =>
        caller.Global.Contains(permission)
            ? db.WebhookSubscriptions
            : db.WebhookSubscriptions.Where(w => w.OrganizationId != null && w.OrganizationId == caller.OrganizationId);

    /// <summary>A new subscription needs url, events and secret; a change (PUT) checks only what it gives and keeps the rest.</summary>
    static (string Field, string Message)? Problem(WebhookRequest body, bool creating, bool allowPrivate)
    {
        if ((creating || body.Url is not null) && OutboundAddresses.ProblemWithUrl(body.Url, allowPrivate) is { } url)
            return ("url", url);
        if ((creating || body.Events is not null) && (body.Events is not { Count: > 0 } events || events.Any(e => e != "*" && !EventTypes.All.Contains(e))))
            return ("events", "events must list event types: " + string.Join(", ", EventTypes.All.Order()) + ", or \"*\".");
        if ((creating || body.Secret is not null) && body.Secret is not { Length: >= 32 and <= 256 })
            return ("secret", "secret must be 32 to 256 characters.");
        if (body.RetryPolicy is { } retry)
        {
            if (retry.MaxAttempts is < 1 or > 20)
                return ("retry_policy.max_attempts", "max_attempts must be from 1 to 20.");
            if (retry.InitialDelay is < 0 or > 3600)
                return ("retry_policy.initial_delay", "initial_delay must be from 0 to 3600 seconds.");
            // NaN compares false with both bounds; it would pass them and then fail to store.
            if (retry.BackoffMultiplier is { } multiplier && !(multiplier is >= 1 and <= 10))
                return ("retry_policy.backoff_multiplier", "backoff_multiplier must be from 1 to 10.");
        }
        return null;
    }

    static void Apply(WebhookSubscription hook, WebhookRequest body, IDataProtectionProvider protection)
    {
        hook.Url = body.Url ?? hook.Url;
        if (body.Events is { } events)
            hook.Events = events.Contains("*") ? "*" : string.Join(' ', events.Distinct(StringComparer.Ordinal));
        if (body.Secret is not null)
            hook.ProtectedSecret = protection.CreateProtector(DeliverWebhooks.Protector).Protect(body.Secret);
        hook.MaxAttempts = body.RetryPolicy?.MaxAttempts ?? hook.MaxAttempts;
        hook.InitialDelaySeconds = body.RetryPolicy?.InitialDelay ?? hook.InitialDelaySeconds;
        hook.BackoffMultiplier = body.RetryPolicy?.BackoffMultiplier ?? hook.BackoffMultiplier;
        hook.Enabled = body.Enabled ?? hook.Enabled;
    }

    static WebhookView View(WebhookSubscription hook) =>
        new(hook.Id, hook.Url, hook.Events.Split(' '), new RetryPolicy(hook.MaxAttempts, hook.InitialDelaySeconds, hook.BackoffMultiplier),
            hook.Enabled, hook.OrganizationId, hook.CreatedAt);

}
