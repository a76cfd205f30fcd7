using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Identity.Policy.Entities;
using Identity.Policy.Values;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Identity.Server.Policies;

/// <summary>
/// The database facts decisions read (a user with its roles and organization, an organization), kept in memory so
/// a decision does not query the database. Every saved change to users, roles, role assignments, organizations,
/// groups, group memberships or MFA factors in this process drops them all (<see cref="DirectoryChanges"/>); a change made by another instance,
/// or around EF Core, is picked up after <see cref="MaxAge"/>, as for the policies themselves.
/// </summary>
public sealed class DirectoryFacts(TimeProvider time)
{
    public static readonly TimeSpan MaxAge = ActivePolicies.MaxAge;
    // Unknown ids are remembered too (so a stream of them does not reach the database); the bound keeps that finite.
    const int MaxEntries = 50_000;

    sealed record Fact(EntityUid? Canonical, Entity[] Entities, long Version, DateTimeOffset LoadedAt);

    readonly ConcurrentDictionary<EntityUid, Fact> facts = new();

    /// <summary>
    /// Adds <paramref name="uid"/>'s entities to <paramref name="into"/> and returns its canonical uid (null if there
    /// is no such one), from memory when the facts are current, else through <paramref name="load"/>.
    /// </summary>
    public async Task<EntityUid?> GetAsync(EntityUid uid, Dictionary<EntityUid, Entity> into,
        Func<Dictionary<EntityUid, Entity>, Task<EntityUid?>> load)
    {
        // The version is read before the database: a change saved meanwhile leaves this load already out of date.
        var version = DirectoryChanges.Version;
        if (!facts.TryGetValue(uid, out var fact) || fact.Version != version || time.GetUtcNow() - fact.LoadedAt >= MaxAge)
        {
            var loaded = new Dictionary<EntityUid, Entity>();
            fact = new Fact(await load(loaded), [.. loaded.Values], version, time.GetUtcNow());
            if (facts.Count >= MaxEntries)
                facts.Clear();
            facts[uid] = fact;
        }
        // Copies: building an entity store writes each entity's ancestor set, and requests run side by side.
        foreach (var entity in fact.Entities)
            into.TryAdd(entity.Uid, new Entity(entity.Uid, (Dictionary<string, Value>)entity.Attributes, entity.Parents, (Dictionary<string, Value>)entity.Tags));
        return fact.Canonical;
    }
}

/// <summary>
/// Counts the saved changes that can change a decision's facts. The count moves after the transaction commits, so a
/// decision that read the old rows before then holds an older count and is not kept.
/// </summary>
public sealed class DirectoryChanges : SaveChangesInterceptor
{
    public static readonly DirectoryChanges Instance = new();

    static long version;
    static readonly ConditionalWeakTable<DbContext, object> Changing = new();

    public static long Version => Interlocked.Read(ref version);

    public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        Note(eventData.Context);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        Note(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public override int SavedChanges(SaveChangesCompletedEventData eventData, int result) => Count(eventData.Context, result);

    public override ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Count(eventData.Context, result));

    public override void SaveChangesFailed(DbContextErrorEventData eventData) => Count(eventData.Context, 0);

    static void Note(DbContext? context)
    {
        if (context is not null && context.ChangeTracker.Entries().Any(e =>
                e.State is EntityState.Added or EntityState.Modified or EntityState.Deleted &&
                e.Entity is User or Role or Organization or IdentityUserRole<string> or Mfa.MfaFactor or Group or GroupMember))
            Changing.AddOrUpdate(context, Instance);
    }

    // Failed saves count too: part of one may have reached the database before it failed.
    static int Count(DbContext? context, int result)
    {
        if (context is not null && Changing.Remove(context))
            Interlocked.Increment(ref version);
        return result;
    }
}
