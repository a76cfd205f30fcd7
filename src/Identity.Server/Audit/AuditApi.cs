using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Identity.Server.Roles;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Audit;

/// <summary>
/// /api/v1/audit: the log, newest first, and a walk of its hash chain. There is no way to change or delete an
/// entry through the API; retention is the audited pruning job's business.
/// </summary>
public static class AuditApi
{
    public sealed record EntryView(long Id, long Sequence, DateTimeOffset Timestamp, string Action, string? Actor, string? Subject,
        string? Organization, string? Ip, string? UserAgent, string Outcome, System.Text.Json.JsonElement? Details);
    public sealed record EntryPage(IReadOnlyList<EntryView> Entries, int Total, int Page, int Limit);
    public sealed record Verification(bool Valid, long Checked, long? FirstBrokenSequence, string? Reason);

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/api/v1/audit").WithTags("Audit").RequireAuthorization(ServerApi.Policy);
        audit.MapGet("/", List).RequirePermission(Permissions.AuditRead).WithSummary("Audit entries, newest first (user_id, action, from, to, page, limit)");
        audit.MapGet("/verify", Verify).RequirePermission(Permissions.AuditRead).WithSummary("Walk the hash chain; report the first broken link");
        return app;
    }

    static async Task<IResult> List(HttpContext http, Caller caller, IdentityDbContext db,
        string? user_id, string? action, string? from, string? to, string? page, string? limit)
    {
        if (!Paging.TryRead(page, limit, out var pageNumber, out var pageSize, out var problem))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem!.Value.Message, new { field = problem.Value.Field });
        if (!Paging.TryDate(from, out var since))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "from must be an ISO 8601 date.", new { field = "from" });
        if (!Paging.TryDate(to, out var until))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "to must be an ISO 8601 date.", new { field = "to" });

        var query = db.AuditEntries.AsNoTracking();
        // An organization-scoped grant of audit:read shows that organization's entries only.
        if (!caller.Global.Contains(Permissions.AuditRead))
            query = query.Where(a => a.OrganizationId != null && a.OrganizationId == caller.OrganizationId);
        if (!string.IsNullOrEmpty(user_id))
            query = query.Where(a => a.SubjectId == user_id || a.ActorId == user_id);
        if (!string.IsNullOrEmpty(action))
            query = query.Where(a => a.Action == action);
        if (since is not null)
            query = query.Where(a => a.Timestamp >= since);
        if (until is not null)
            query = query.Where(a => a.Timestamp <= until);

        var total = await query.CountAsync();
        var entries = await query.OrderByDescending(a => a.Sequence).Skip((pageNumber - 1) * pageSize).Take(pageSize).ToListAsync();
        return Results.Ok(new EntryPage(entries.Select(e => new EntryView(e.Id, e.Sequence, e.Timestamp, e.Action, e.ActorId, e.SubjectId,
            e.OrganizationId, e.Ip, e.UserAgent, e.Outcome,
            e.Details is null ? null : System.Text.Json.JsonDocument.Parse(e.Details).RootElement.Clone())).ToList(), total, pageNumber, pageSize));
    }

    static async Task<IResult> Verify(HttpContext http, Caller caller, IdentityDbContext db, AuditChain chain)
    {
        if (!caller.Global.Contains(Permissions.AuditRead))
            return ApiErrors.Result(http, 403, "FORBIDDEN", "Verifying the whole chain needs audit:read for the whole server.");

        // A chain whose beginning was pruned starts from the link that the retention record names.
        var first = await db.AuditEntries.AsNoTracking().OrderBy(a => a.Sequence).Select(a => new { a.Sequence, a.PreviousHash }).FirstOrDefaultAsync();
        if (first is null)
            return Results.Ok(new Verification(true, 0, null, null));
        if (first.Sequence > 1 && !(await PruneAuditLog.RecordsAsync(db)).Any(r => r.LastPrunedSequence == first.Sequence - 1 && r.LastPrunedHash == first.PreviousHash))
            return Results.Ok(new Verification(false, 0, first.Sequence - 1, "entries before this one were removed without a retention record"));

        long expected = first.Sequence, checkedCount = 0;
        var previous = first.PreviousHash;
        // In batches, so a long log is walked in bounded memory.
        while (true)
        {
            var batch = await db.AuditEntries.AsNoTracking().Where(a => a.Sequence >= expected).OrderBy(a => a.Sequence).Take(1000).ToListAsync();
            if (batch.Count == 0)
                return Results.Ok(new Verification(true, checkedCount, null, null));
            foreach (var entry in batch)
            {
                var reason = entry.Sequence != expected ? $"entry {expected} is missing"
                    : entry.PreviousHash != previous ? "the link to the previous entry does not match"
                    : chain.HashOf(entry) != entry.Hash ? "the entry's content does not match its hash"
                    : null;
                if (reason is not null)
                    return Results.Ok(new Verification(false, checkedCount, expected, reason));
                (previous, expected, checkedCount) = (entry.Hash, expected + 1, checkedCount + 1);
            }
        }
    }
}
