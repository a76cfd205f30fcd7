using Identity.Policy;
using Identity.Policy.Ast;
using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Policies;

/// <summary>
/// The compiled set of enabled stored policies, kept in memory so a decision does not parse Cedar or read the
/// policy table. A change through this instance's API invalidates it at once; a change made by another instance
/// (or directly in the database) is picked up after <see cref="MaxAge"/>.
/// </summary>
public sealed class ActivePolicies(TimeProvider time, ILogger<ActivePolicies> logger)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);

    sealed record Snapshot(PolicySet Set, long Version, DateTimeOffset LoadedAt);

    Snapshot? current;
    long version;

    public async ValueTask<PolicySet> GetAsync(IdentityDbContext db, CancellationToken cancellationToken)
    {
        var wanted = Interlocked.Read(ref version);
        var snapshot = Volatile.Read(ref current);
        if (snapshot is not null && snapshot.Version == wanted && time.GetUtcNow() - snapshot.LoadedAt < MaxAge)
            return snapshot.Set;

        var rows = await db.StoredPolicies.AsNoTracking().Where(p => p.Enabled).OrderBy(p => p.Id).ToListAsync(cancellationToken);
        var set = new PolicySet();
        foreach (var row in rows)
        {
            try
            {
                set.Add(Compile(row.Id, row.Text));
            }
            catch (PolicyFormatException ex)
            {
                // Only a row written around the API can be invalid: skip it rather than stop every decision.
                logger.LogError("Stored policy {PolicyId} is not valid Cedar and is ignored: {Problem}", row.Id, ex.Message);
            }
        }
        // Stored only if nothing changed while loading; otherwise the next decision loads again.
        Volatile.Write(ref current, new Snapshot(set, wanted, time.GetUtcNow()));
        return set;
    }

    public void Invalidate() => Interlocked.Increment(ref version);

    /// <summary>
    /// The one static policy of <paramref name="text"/>, named <paramref name="id"/> (an @id annotation in the text
    /// does not rename it). Throws <see cref="PolicyFormatException"/> with line and column.
    /// </summary>
    public static CedarPolicy Compile(string id, string text)
    {
        var parsed = PolicySet.Parse(text);
        if (parsed.Templates.Count > 0)
            throw new PolicyFormatException("templates cannot be stored; write a static policy");
        if (parsed.Policies.Count != 1)
            throw new PolicyFormatException($"a stored policy holds exactly one Cedar policy, found {parsed.Policies.Count}");
        var p = parsed.Policies[0];
        return new CedarPolicy(id, p.Effect, p.Principal, p.Action, p.Resource, p.Conditions, p.Annotations);
    }
}
