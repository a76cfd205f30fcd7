using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Identity.Server.Audit;

/// <summary>
/// Links new audit entries into the hash chain as they are saved: each gets the next sequence number and an
/// HMAC-SHA256, under a key kept outside the database (keys/audit-chain.key), over its content and its predecessor's
/// hash. Without the key a changed entry cannot be given a matching hash, nor the chain after it recomputed.
/// Appending is serialized in this process (a gate held from reading the last link until the save ends, see
/// <see cref="Settle"/>), and the unique sequence index refuses a fork from any other writer.
/// </summary>
public sealed class AuditChain(SigningKeys keys, ILogger<AuditChain> logger) : SaveChangesInterceptor
{
    static readonly SemaphoreSlim Gate = new(1, 1);
    // The entries a save in progress has linked, by context, from SavingChanges until Settle.
    static readonly ConditionalWeakTable<DbContext, List<AuditEntry>> Holding = new();

    public string HashOf(AuditEntry entry) => Convert.ToHexString(HMACSHA256.HashData(keys.AuditKey, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new object?[]
    {
        entry.Sequence, entry.EventId, entry.Timestamp.UtcTicks, entry.Action, entry.ActorId, entry.SubjectId, entry.OrganizationId,
        entry.Ip, entry.UserAgent, entry.Outcome, entry.Details, entry.PreviousHash,
    })))).ToLowerInvariant();

    /// <summary>
    /// At start-up, when this start created the key: entries already stored were linked without it (before the chain
    /// was keyed, or under a key that is gone), so they are linked again under the new one, from the first entry on
    /// (whose link to pruned entries stays as the retention record has it). The database is trusted at this moment.
    /// </summary>
    public async Task RelinkIfNewKeyAsync(IdentityDbContext db, CancellationToken cancellationToken)
    {
        if (!keys.AuditKeyCreated)
            return;
        long after = long.MinValue, relinked = 0;
        string? previous = null;
        while (true)
        {
            // In batches, so a long log is relinked in bounded memory.
            var batch = await db.AuditEntries.Where(a => a.Sequence > after).OrderBy(a => a.Sequence).Take(1000).ToListAsync(cancellationToken);
            if (batch.Count == 0)
                break;
            foreach (var entry in batch)
            {
                entry.PreviousHash = previous ?? entry.PreviousHash;
                previous = entry.Hash = HashOf(entry);
                after = entry.Sequence;
            }
            await db.SaveChangesAsync(cancellationToken);
            db.ChangeTracker.Clear();
            relinked += batch.Count;
        }
        if (relinked > 0)
            logger.LogWarning("A new audit chain key was created; {Count} existing audit entries were linked again under it.", relinked);
    }

    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result) =>
        SavingChangesAsync(eventData, result).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        if (eventData.Context is not IdentityDbContext db)
            return result;
        var pending = db.ChangeTracker.Entries<AuditEntry>().Where(e => e.State == EntityState.Added && e.Entity.Hash.Length == 0)
            .Select(e => e.Entity).ToList();
        if (pending.Count == 0)
            return result;

        await Gate.WaitAsync(cancellationToken);
        Holding.AddOrUpdate(db, pending);
        var last = await db.AuditEntries.AsNoTracking().OrderByDescending(a => a.Sequence)
            .Select(a => new { a.Sequence, a.Hash }).FirstOrDefaultAsync(cancellationToken);
        var (sequence, previous) = (last?.Sequence ?? 0, last?.Hash ?? "");
        foreach (var entry in pending)
        {
            (entry.Sequence, entry.PreviousHash) = (++sequence, previous);
            previous = entry.Hash = HashOf(entry);
        }
        return result;
    }

    /// <summary>
    /// Ends what <see cref="SavingChangesAsync"/> began, however the save ended: <see cref="IdentityDbContext"/> calls
    /// it from a finally around every save. EF Core's own events miss some endings (a failure while the entries are
    /// linked, before EF Core's try begins), and one missed kept the gate, so that every later audited write in the
    /// process waited for ever. A save that did not happen leaves its entries unlinked, to be linked anew (next
    /// sequence, new hash) if the caller saves again; the entries of a save that did are counted (ServerMetrics).
    /// </summary>
    public static void Settle(DbContext context, bool saved)
    {
        if (!Holding.TryGetValue(context, out var linked))
            return;
        Holding.Remove(context);
        foreach (var entry in linked)
            if (saved)
                Hosting.ServerMetrics.CountSecurityEvent(entry.Action, entry.Outcome);
            else
                entry.Hash = "";
        Gate.Release();
    }
}
