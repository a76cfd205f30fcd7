using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using Quartz;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Sessions;

/// <summary>
/// Hourly: OpenIddict's pruning of tokens that can no longer be used (expired, revoked or redeemed, older than a day),
/// of expired client assertion ids (ClientAssertionReplay), of sessions (authorizations) that can no longer be used,
/// and session.expired for each session that was still valid and is now gone.
/// </summary>
[DisallowConcurrentExecution]
public sealed class PruneSessions(IdentityDbContext db, IOpenIddictTokenManager tokens, Connect.TokenOptions lifetimes,
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
        // OpenIddict's own pruning takes a valid sign-in without token rows for abandoned, but a sign-in's tokens have
        // none now (Connect/SessionRefreshTokens): one lives while its session's current refresh token can. A session
        // recorded by an earlier version has no lifetime on record: the longest refresh token lifetime bounds it.
        var idleSince = now - (lifetimes.RefreshTokenLifetime > lifetimes.NotRememberedRefreshTokenLifetime
            ? lifetimes.RefreshTokenLifetime : lifetimes.NotRememberedRefreshTokenLifetime);
        var live = sessions.Where(s => s.RefreshTokenId is not null && !s.HasLapsed(now, lifetimes.RefreshTokenAbsoluteLifetime) && (s.RefreshTokenLifetime is not null || s.LastUsedAt >= idleSince))
            .Select(s => s.AuthorizationId).ToList();
        // Only those without token rows left: a row still points at its authorization (no cascade), and OpenIddict's
        // token pruning takes the rows of an ended session once they are a day old, so the session goes at a later run.
        var before = threshold.UtcDateTime;
        await db.Set<OpenIddictEntityFrameworkCoreAuthorization>()
            .Where(a => a.CreationDate < before && !a.Tokens.Any() &&
                        (a.Status != Statuses.Valid || (a.Type == AuthorizationTypes.AdHoc && !live.Contains(a.Id!))))
            .ExecuteDeleteAsync(cancellationToken);

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
