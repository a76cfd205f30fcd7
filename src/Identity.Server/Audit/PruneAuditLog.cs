using System.Text.Json;
using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Quartz;

namespace Identity.Server.Audit;

public sealed class AuditOptions
{
    public const string Section = "Identity:Audit";

    /// <summary>Entries older than this many days are pruned daily; 0 keeps them forever.</summary>
    public int RetentionDays { get; set; }
}

/// <summary>
/// Retention: deletes the oldest entries and records it as an audit.pruned entry, in one transaction. The record
/// names the last pruned link (sequence and hash), which is how the verification knows that the chain starting at
/// the oldest remaining entry was cut by retention and not by someone deleting history.
/// </summary>
[DisallowConcurrentExecution]
public sealed class PruneAuditLog(IdentityDbContext db, SecurityEvents events, TimeProvider time, IOptions<AuditOptions> options) : IJob
{
    public const string Pruned = "audit.pruned";
    public static readonly TimeSpan Interval = TimeSpan.FromDays(1);

    public sealed record Record(long LastPrunedSequence, string LastPrunedHash, int Count, DateTimeOffset Before);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        if (options.Value.RetentionDays <= 0)
            return;
        var before = time.GetUtcNow() - TimeSpan.FromDays(options.Value.RetentionDays);
        var last = await db.AuditEntries.AsNoTracking().Where(a => a.Timestamp < before).OrderByDescending(a => a.Sequence)
            .Select(a => new { a.Sequence, a.Hash }).FirstOrDefaultAsync(cancellationToken);
        if (last is null)
            return;

        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var count = await db.AuditEntries.Where(a => a.Sequence <= last.Sequence).ExecuteDeleteAsync(cancellationToken);
        await events.RaiseAsync(Pruned, null, new Record(last.Sequence, last.Hash, count, before));
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The retention records, to anchor a chain whose beginning was pruned.</summary>
    public static async Task<IReadOnlyList<Record>> RecordsAsync(IdentityDbContext db) =>
        (await db.AuditEntries.AsNoTracking().Where(a => a.Action == Pruned && a.Details != null).Select(a => a.Details!).ToListAsync())
        .Select(details => JsonSerializer.Deserialize<Record>(details, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!)
        .ToList();
}
