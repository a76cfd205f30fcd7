using System.Security.Claims;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Roles;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;
using Permissions = Identity.Server.Roles.Permissions;

namespace Identity.Server.Sessions;

/// <summary>
/// /api/v1/sessions: a user's active sign-ins (their OpenIddict authorizations) and ending them, which revokes
/// every token of that sign-in at once. Admins do the same for a user under /api/v1/users/{id}/sessions.
/// </summary>
public static class SessionsApi
{
    /// <summary>A sign-in; <paramref name="ExpiresAt"/> is when it lapses unless its refresh token is used first (null without one).</summary>
    public sealed record SessionView(string Id, string? ClientId, string? ClientName, DateTimeOffset? CreatedAt, DateTimeOffset? LastUsedAt,
        DateTimeOffset? ExpiresAt, string? Ip, string? UserAgent, bool Current);
    public sealed record SessionList(IReadOnlyList<SessionView> Sessions);
    public sealed record RevokedSessions(int Revoked);

    public static IEndpointRouteBuilder MapSessionsApi(this IEndpointRouteBuilder app)
    {
        var mine = app.MapGroup("/api/v1/sessions").WithTags("Sessions").RequireAuthorization(ServerApi.Policy);
        mine.MapGet("/", (ClaimsPrincipal me, SessionStore store) => ListAsync(store, Self(me), me.GetAuthorizationId()))
            .WithSummary("The caller's active sessions; the one of the calling token has current: true");
        mine.MapDelete("/{id}", (HttpContext http, string id, ClaimsPrincipal me, SessionStore store) => RevokeOneAsync(http, store, Self(me), id))
            .WithSummary("End one session: its tokens stop working at once");
        mine.MapDelete("/", async (ClaimsPrincipal me, SessionStore store) =>
                Results.Ok(new RevokedSessions(await store.RevokeAllAsync(Self(me), except: me.GetAuthorizationId()))))
            .WithSummary("End every session but the current one");

        var theirs = app.MapGroup("/api/v1/users/{userId}/sessions").WithTags("Sessions").RequireAuthorization(ServerApi.Policy);
        theirs.MapGet("/", async (HttpContext http, string userId, Caller caller, IdentityDbContext db, SessionStore store) =>
                await ReachesAsync(db, caller, Permissions.UsersRead, userId) ? await ListAsync(store, userId, null) : ApiErrors.NotFound(http))
            .RequirePermission(Permissions.UsersRead).WithSummary("A user's active sessions");
        theirs.MapDelete("/{id}", async (HttpContext http, string userId, string id, Caller caller, IdentityDbContext db, SessionStore store) =>
                await ReachesAsync(db, caller, Permissions.UsersWrite, userId) ? await RevokeOneAsync(http, store, userId, id) : ApiErrors.NotFound(http))
            .RequirePermission(Permissions.UsersWrite).WithSummary("End one of a user's sessions");
        theirs.MapDelete("/", async (HttpContext http, string userId, Caller caller, IdentityDbContext db, SessionStore store) =>
                await ReachesAsync(db, caller, Permissions.UsersWrite, userId) ? Results.Ok(new RevokedSessions(await store.RevokeAllAsync(userId, except: null))) : ApiErrors.NotFound(http))
            .RequirePermission(Permissions.UsersWrite).WithSummary("End all of a user's sessions");
        return app;
    }

    static string Self(ClaimsPrincipal me) => me.FindFirstValue(Claims.Subject)!;

    static async Task<IResult> ListAsync(SessionStore store, string userId, string? current) =>
        Results.Ok(new SessionList(await store.ListAsync(userId, current)));

    static async Task<IResult> RevokeOneAsync(HttpContext http, SessionStore store, string userId, string id) =>
        await store.RevokeAsync(userId, id) ? Results.NoContent() : ApiErrors.NotFound(http);

    /// <summary>Ending someone's sessions changes their account: it needs what changing it needs (<see cref="Caller.HoldsAllOfAsync"/>).</summary>
    static async Task<bool> ReachesAsync(IdentityDbContext db, Caller caller, string permission, string userId) =>
        await db.Users.AsNoTracking().Where(u => u.Id == userId).Select(u => new { u.OrganizationId }).FirstOrDefaultAsync() is { } user &&
        caller.Reaches(permission, user.OrganizationId) &&
        (permission != Permissions.UsersWrite || await caller.HoldsAllOfAsync(db, userId));

}

/// <summary>Sessions are OpenIddict authorizations (status, client, tokens) joined with <see cref="SessionInfo"/>.</summary>
public sealed class SessionStore(IOpenIddictAuthorizationManager authorizations, IOpenIddictApplicationManager applications,
    IOpenIddictTokenManager tokens, IdentityDbContext db, SecurityEvents events, BackchannelLogout logouts, IHttpContextAccessor http,
    TimeProvider time, Connect.TokenOptions lifetimes)
{
    /// <summary>
    /// The user's valid sign-ins. Those that lapsed (<see cref="SessionInfo.HasLapsed"/>) and wait for the hourly
    /// pruning are left out, unless <paramref name="withLapsed"/>: ending every session ends those too, so that no
    /// sign-in is left that could still be used.
    /// </summary>
    public async Task<IReadOnlyList<SessionsApi.SessionView>> ListAsync(string userId, string? current, bool withLapsed = false)
    {
        var now = time.GetUtcNow();
        var infos = await db.Sessions.AsNoTracking().Where(s => s.UserId == userId).ToDictionaryAsync(s => s.AuthorizationId);
        var clients = new Dictionary<string, (string? Id, string? Name)>();
        var sessions = new List<SessionsApi.SessionView>();
        await foreach (var authorization in authorizations.FindBySubjectAsync(userId))
        {
            if (!await authorizations.HasStatusAsync(authorization, Statuses.Valid) || !await authorizations.HasTypeAsync(authorization, AuthorizationTypes.AdHoc))
                continue;
            var id = (await authorizations.GetIdAsync(authorization))!;
            infos.TryGetValue(id, out var info);
            if (!withLapsed && info?.HasLapsed(now, lifetimes.RefreshTokenAbsoluteLifetime) == true)
                continue;
            var applicationId = await authorizations.GetApplicationIdAsync(authorization);
            if (applicationId is not null && !clients.ContainsKey(applicationId))
                clients[applicationId] = await applications.FindByIdAsync(applicationId) is { } application
                    ? (await applications.GetClientIdAsync(application), await applications.GetDisplayNameAsync(application))
                    : (null, null);
            var client = applicationId is null ? (null, null) : clients[applicationId];
            sessions.Add(new SessionsApi.SessionView(id, client.Id, client.Name, info?.CreatedAt ?? await authorizations.GetCreationDateAsync(authorization),
                info?.LastUsedAt, info?.RefreshTokenExpiresAt(lifetimes.RefreshTokenAbsoluteLifetime), info?.Ip, info?.UserAgent, id == current));
        }
        return sessions.OrderByDescending(s => s.LastUsedAt ?? s.CreatedAt).ToList();
    }

    /// <summary>
    /// Revokes the session and all its tokens, if it is one of <paramref name="userId"/>'s, and tells its client
    /// through back-channel logout when the client asked for that.
    /// </summary>
    public async Task<bool> RevokeAsync(string userId, string id)
    {
        var authorization = await authorizations.FindByIdAsync(id);
        // Ended already: nothing to revoke, and no second event for it.
        if (authorization is null || await authorizations.GetSubjectAsync(authorization) != userId ||
            !await authorizations.HasStatusAsync(authorization, Statuses.Valid))
            return false;
        await tokens.RevokeByAuthorizationIdAsync(id);
        await authorizations.TryRevokeAsync(authorization);
        await events.RaiseNowAsync(EventTypes.SessionExpired, new SecurityEvents.Subject(userId), new { session = id, reason = "revoked" });
        if (await authorizations.GetApplicationIdAsync(authorization) is { } applicationId && await applications.FindByIdAsync(applicationId) is { } application)
            await logouts.NotifyAsync(db, applications, application, http.HttpContext, userId,
                () => db.Sessions.AsNoTracking().Where(s => s.AuthorizationId == id).Select(s => s.Sid).FirstOrDefaultAsync());
        return true;
    }

    /// <summary>The user's sessions signed in through the browser session <paramref name="sid"/> (their ids).</summary>
    public Task<List<string>> OfBrowserSessionAsync(string userId, string sid) =>
        db.Sessions.AsNoTracking().Where(s => s.Sid == sid && s.UserId == userId).Select(s => s.AuthorizationId).ToListAsync();

    /// <summary>Ends every session signed in through the browser session <paramref name="sid"/>: single logout.</summary>
    public async Task RevokeBrowserSessionAsync(string userId, string sid)
    {
        foreach (var id in await OfBrowserSessionAsync(userId, sid))
            await RevokeAsync(userId, id);
    }

    /// <summary>
    /// Ends the user's sessions but those signed in through the browser session <paramref name="sid"/>, the browser
    /// asking: "sign out everywhere else".
    /// </summary>
    public async Task<int> RevokeElsewhereAsync(string userId, string? sid)
    {
        var here = sid is null ? [] : await OfBrowserSessionAsync(userId, sid);
        var elsewhere = (await ListAsync(userId, null, withLapsed: true)).Select(s => s.Id).Except(here).ToList();
        foreach (var id in elsewhere)
            await RevokeAsync(userId, id);
        return elsewhere.Count;
    }

    /// <summary>Ends the user's sessions but <paramref name="except"/>; only those with <paramref name="clientId"/> when it is given.</summary>
    public async Task<int> RevokeAllAsync(string userId, string? except, string? clientId = null)
    {
        var ids = (await ListAsync(userId, null, withLapsed: true)).Where(s => s.Id != except && (clientId is null || s.ClientId == clientId)).Select(s => s.Id).ToList();
        foreach (var id in ids)
            await RevokeAsync(userId, id);
        return ids.Count;
    }
}
