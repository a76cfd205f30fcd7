using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using Quartz;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Sessions;

/// <summary>
/// Hourly: OpenIddict's pruning of tokens and authorizations that can no longer be used (expired, revoked or
/// redeemed, older than a day), and session.expired for each session that was still valid and is now gone.
/// </summary>
[DisallowConcurrentExecution]
public sealed class PruneSessions(IdentityDbContext db, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens,
    SecurityEvents events, TimeProvider time) : IJob
{
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);
    static readonly TimeSpan Grace = TimeSpan.FromDays(1);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var threshold = time.GetUtcNow() - Grace;
        var sessions = await db.Sessions.ToListAsync(cancellationToken);
        var wasValid = new HashSet<string>();
        foreach (var session in sessions)
            if (await authorizations.FindByIdAsync(session.AuthorizationId, cancellationToken) is { } authorization &&
                await authorizations.HasStatusAsync(authorization, Statuses.Valid, cancellationToken))
                wasValid.Add(session.AuthorizationId);

        await tokens.PruneAsync(threshold, cancellationToken);
        await authorizations.PruneAsync(threshold, cancellationToken);

        foreach (var session in sessions)
        {
            if (await authorizations.FindByIdAsync(session.AuthorizationId, cancellationToken) is not null)
                continue;
            if (wasValid.Contains(session.AuthorizationId))
                await events.RaiseAsync(EventTypes.SessionExpired, await db.Users.FindAsync(session.UserId) is { } user
                    ? SecurityEvents.Subject.Of(user) : new SecurityEvents.Subject(session.UserId), new { session = session.AuthorizationId });
            db.Sessions.Remove(session);
        }
        await db.SaveChangesAsync(cancellationToken);
    }
}
