using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using Quartz;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Sessions;

/// <summary>
/// Hourly: OpenIddict's pruning of tokens and authorizations that can no longer be used (expired, revoked or
/// redeemed, older than a day), of expired client assertion ids (ClientAssertionReplay), and session.expired for each
/// session that was still valid and is now gone.
/// </summary>
[DisallowConcurrentExecution]
public sealed class PruneSessions(IdentityDbContext db, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens,
    SecurityEvents events, TimeProvider time) : IJob
{
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);
    static readonly TimeSpan Grace = TimeSpan.FromDays(1);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var threshold = now - Grace;
        var sessions = await db.Sessions.ToListAsync(cancellationToken);
        var ids = sessions.Select(s => s.AuthorizationId).ToList();
        var wasValid = await AuthorizationIdsAsync(ids, onlyValid: true, cancellationToken);

        await tokens.PruneAsync(threshold, cancellationToken);
        await db.UsedClientAssertions.Where(a => a.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
        await authorizations.PruneAsync(threshold, cancellationToken);

        // Read from the table itself: pruning deletes in bulk, around the managers' caches.
        var remaining = await AuthorizationIdsAsync(ids, onlyValid: false, cancellationToken);
        foreach (var session in sessions.Where(s => !remaining.Contains(s.AuthorizationId)))
        {
            if (wasValid.Contains(session.AuthorizationId))
                await events.RaiseAsync(EventTypes.SessionExpired, new SecurityEvents.Subject(session.UserId), new { session = session.AuthorizationId, reason = "timed_out" });
            db.Sessions.Remove(session);
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    async Task<HashSet<string>> AuthorizationIdsAsync(List<string> ids, bool onlyValid, CancellationToken cancellationToken) =>
        (await db.Set<OpenIddictEntityFrameworkCoreAuthorization>().AsNoTracking()
            .Where(a => ids.Contains(a.Id!) && (!onlyValid || a.Status == Statuses.Valid))
            .Select(a => a.Id!).ToListAsync(cancellationToken)).ToHashSet();
}
