using Identity.Server.Data;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Sessions;

/// <summary>
/// A sign-in's OpenIddict authorization is its session: when it is created this records where it came from, and
/// later tokens issued from it (code exchange, refresh) mark it used, to the minute: an app refreshing often would
/// otherwise pay a database write per refresh for a time nobody reads to the second. The time each session was
/// last recorded is also kept in memory, so a refresh within that minute does not even read the session row (a tenth
/// of a refresh's cost). Another instance keeps its own, so each instance writes at most once a minute per session.
/// </summary>
public sealed class RecordSession(IdentityDbContext db, TimeProvider time, RecordSession.RecentUses recent) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static readonly TimeSpan UseResolution = TimeSpan.FromMinutes(1);

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
        .UseScopedHandler<RecordSession>()
        .SetOrder(OpenIddictServerHandlers.AttachAuthorization.Descriptor.Order + 1_000)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.Principal?.GetAuthorizationId() is not { } id || context.Principal.GetClaim(OpenIddictConstants.Claims.Subject) is not { } subject)
            return;

        var now = time.GetUtcNow();
        if (recent.IsRecorded(id, now))
            return;
        var session = await db.Sessions.FindAsync(id);
        if (session is null)
        {
            var http = context.Transaction.GetHttpRequest()?.HttpContext;
            var userAgent = http?.Request.Headers.UserAgent.ToString();
            db.Sessions.Add(new SessionInfo
            {
                AuthorizationId = id, UserId = subject, ClientId = context.Request?.ClientId, CreatedAt = now, LastUsedAt = now,
                Sid = context.Principal.GetClaim(Connect.ClaimDestinations.SessionId),
                Ip = http?.Connection.RemoteIpAddress?.ToString(),
                UserAgent = string.IsNullOrEmpty(userAgent) ? null : userAgent[..Math.Min(userAgent.Length, 512)],
            });
        }
        else if (now - session.LastUsedAt >= UseResolution)
            session.LastUsedAt = now;
        else
        {
            recent.Recorded(id, session.LastUsedAt);
            return;
        }
        await db.SaveChangesAsync();
        recent.Recorded(id, now);
    }

    /// <summary>When this instance last saw each session's use recorded: a hint that only ever saves a read.</summary>
    public sealed class RecentUses
    {
        // A bound, not an eviction policy: past it all sessions are read once more.
        const int MaxEntries = 100_000;
        readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> lastUse = new(StringComparer.Ordinal);

        public bool IsRecorded(string authorizationId, DateTimeOffset now) =>
            lastUse.TryGetValue(authorizationId, out var at) && now - at < UseResolution && now >= at;

        public void Recorded(string authorizationId, DateTimeOffset at)
        {
            if (lastUse.Count >= MaxEntries)
                lastUse.Clear();
            lastUse[authorizationId] = at;
        }
    }
}
