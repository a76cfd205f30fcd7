using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Identity.Server.Audit;

/// <summary>
/// Links new audit entries into the hash chain as they are saved: each gets the next sequence number and a hash
/// over its content and its predecessor's hash. Appending is serialized in this process (a gate held from reading
/// the last link until the save ends), and the unique sequence index refuses a fork from any other writer.
/// </summary>
public sealed class AuditChain : SaveChangesInterceptor
{
    public static readonly AuditChain Instance = new();

    static readonly SemaphoreSlim Gate = new(1, 1);
    static readonly ConditionalWeakTable<DbContext, object> Holding = new();

    public static string HashOf(AuditEntry entry) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new object?[]
    {
        entry.Sequence, entry.EventId, entry.Timestamp.UtcTicks, entry.Action, entry.ActorId, entry.SubjectId, entry.OrganizationId,
        entry.Ip, entry.UserAgent, entry.Outcome, entry.Details, entry.PreviousHash,
    })))).ToLowerInvariant();

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
        Holding.AddOrUpdate(db, Gate);
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

    public override int SavedChanges(SaveChangesCompletedEventData eventData, int result) => Release(eventData.Context, result);

    public override ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Release(eventData.Context, result));

    public override void SaveChangesFailed(DbContextErrorEventData eventData) => Release(eventData.Context, 0);

    public override Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Release(eventData.Context, 0);
        // A failed save leaves the entries unsaved: they are relinked (new hash) if the caller saves again.
        if (eventData.Context is not null)
            foreach (var entry in eventData.Context.ChangeTracker.Entries<AuditEntry>().Where(e => e.State == EntityState.Added))
                entry.Entity.Hash = "";
        return Task.CompletedTask;
    }

    public override void SaveChangesCanceled(DbContextEventData eventData) => Release(eventData.Context, 0);

    public override Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        Release(eventData.Context, 0);
        return Task.CompletedTask;
    }

    static int Release(DbContext? context, int result)
    {
        if (context is not null && Holding.TryGetValue(context, out _))
        {
            Holding.Remove(context);
            Gate.Release();
        }
        return result;
    }
}
