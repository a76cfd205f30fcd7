using System.Security.Claims;
using System.Text.Json;
using Identity.Server.Audit;
using Identity.Server.Data;
using Identity.Server.Webhooks;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Events;

/// <summary>The events of the seed's webhook list, and the ones later features add.</summary>
public static class EventTypes
{
    public const string UserCreated = "user.created";
    public const string UserUpdated = "user.updated";
    public const string UserDeleted = "user.deleted";
    public const string AuthLogin = "auth.login";
    public const string AuthLogout = "auth.logout";
    public const string AuthFailed = "auth.failed";
    public const string RoleAssigned = "role.assigned";
    public const string RoleRemoved = "role.removed";
    public const string MfaEnabled = "mfa.enabled";
    public const string MfaDisabled = "mfa.disabled";
    /// <summary>The seed's "session timeout or invalidation": details.reason tells which (timed_out, revoked).</summary>
    public const string SessionExpired = "session.expired";
    public const string WebhookFailed = "webhook.failed";
    public const string TokenReuseDetected = "token.reuse_detected";
    public const string TokenExchanged = "token.exchanged";
    public const string ConsentGranted = "consent.granted";
    public const string ConsentRevoked = "consent.revoked";
    public const string PolicyCreated = "policy.created";
    public const string PolicyUpdated = "policy.updated";
    public const string PolicyDeleted = "policy.deleted";
    public const string LoginLinked = "user.login_linked";
    public const string LoginRemoved = "user.login_removed";
    public const string RoleCreated = "role.created";
    public const string RoleUpdated = "role.updated";
    public const string RoleDeleted = "role.deleted";
    public const string WebhookCreated = "webhook.created";
    public const string WebhookUpdated = "webhook.updated";
    public const string WebhookDeleted = "webhook.deleted";
    public const string GroupCreated = "group.created";
    public const string GroupUpdated = "group.updated";
    public const string GroupDeleted = "group.deleted";
    public const string ClientCreated = "client.created";
    public const string ClientUpdated = "client.updated";
    public const string ClientDeleted = "client.deleted";
    public const string ClientSecretRotated = "client.secret_rotated";
    public const string PasskeyAdded = "passkey.added";
    public const string PasskeyRemoved = "passkey.removed";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
    {
        UserCreated, UserUpdated, UserDeleted, AuthLogin, AuthLogout, AuthFailed, RoleAssigned, RoleRemoved,
        MfaEnabled, MfaDisabled, SessionExpired, WebhookFailed, TokenReuseDetected, TokenExchanged, ConsentGranted, ConsentRevoked, PolicyCreated, PolicyUpdated, PolicyDeleted,
        LoginLinked, LoginRemoved, RoleCreated, RoleUpdated, RoleDeleted, WebhookCreated, WebhookUpdated, WebhookDeleted,
        GroupCreated, GroupUpdated, GroupDeleted, ClientCreated, ClientUpdated, ClientDeleted, ClientSecretRotated, PasskeyAdded, PasskeyRemoved,
    };
}

/// <summary>
/// One stream of security events with two durable consumers: each event becomes an audit entry and a webhook
/// outbox row for every subscription that wants it, added to the same DbContext as the change that caused it, so
/// both commit in the change's own SaveChanges (one transaction) or not at all. Nothing secret goes in: no
/// passwords, tokens or codes, only who, what, when and from where.
/// </summary>
public sealed class SecurityEvents(IdentityDbContext db, IHttpContextAccessor accessor, TimeProvider time)
{
    /// <summary>
    /// Whom the event is about. <paramref name="Roles"/> are the roles the account holds once the change is stored; when
    /// left out they are read from the database, which is right for every event but one that changes them.
    /// </summary>
    public sealed record Subject(string? Id, string? Email = null, string? Name = null, string? OrganizationId = null,
        IReadOnlyCollection<string>? Roles = null)
    {
        public static Subject Of(User user) => new(user.Id, user.Email, user.Name, user.OrganizationId);
    }

    List<WebhookSubscription>? subscriptions;

    /// <summary>Adds the event to the pending change; it is stored by the next SaveChanges.</summary>
    public async Task RaiseAsync(string type, Subject? subject, object? details = null, bool success = true)
    {
        var http = accessor.HttpContext;
        // A user known only by id (from a token, an MFA factor, a session): read the rest, its organization above all,
        // or that organization's admins and webhooks would never see the event.
        if (subject is { Id: { } subjectId, Email: null })
            subject = await db.Users.AsNoTracking().Where(u => u.Id == subjectId)
                .Select(u => new Subject(u.Id, u.Email, u.Name, u.OrganizationId)).FirstOrDefaultAsync() ?? subject;
        // Whole milliseconds: every provider stores them exactly, so the audit hash recomputes to the same value.
        var utc = time.GetUtcNow().UtcTicks;
        var now = new DateTimeOffset(utc - utc % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);
        var ip = http?.Connection.RemoteIpAddress?.ToString();
        var userAgent = http?.Request.Headers.UserAgent.ToString() is { Length: > 0 } ua ? ua[..Math.Min(ua.Length, 512)] : null;
        var actor = http?.User.FindFirst(Claims.Subject)?.Value;
        var id = "evt_" + Guid.NewGuid().ToString("N");

        db.AuditEntries.Add(new AuditEntry
        {
            EventId = id, Timestamp = now, Action = type, ActorId = actor ?? subject?.Id, SubjectId = subject?.Id,
            OrganizationId = subject?.OrganizationId, Ip = ip, UserAgent = userAgent, Outcome = success ? "success" : "failure",
            Details = details is null ? null : JsonSerializer.Serialize(details, Json),
        });

        // Read once per request: deleting a role raises an event for each of its holders.
        subscriptions ??= await db.WebhookSubscriptions.AsNoTracking().Where(s => s.Enabled).ToListAsync();
        var wanted = subscriptions.Where(s => s.Wants(type) && (s.OrganizationId is null || s.OrganizationId == subject?.OrganizationId)).ToList();
        if (wanted.Count == 0)
            return;
        var roles = subject?.Roles ?? (subject?.Id is { } holder ? [.. (await Roles.RolesApi.NamesOfAsync(db, [holder]))[holder]] : null);
        var payload = JsonSerializer.Serialize(new
        {
            id,
            @event = type,
            timestamp = now,
            data = new
            {
                user = subject is null ? null : new { id = subject.Id, email = subject.Email, name = subject.Name, roles = roles?.Order(StringComparer.Ordinal) },
                details,
                metadata = new { ip_address = ip, user_agent = userAgent, source = SourceOf(http), outcome = success ? "success" : "failure" },
            },
        }, Json);
        foreach (var subscription in wanted)
            db.WebhookDeliveries.Add(new WebhookDelivery
            {
                SubscriptionId = subscription.Id, EventId = id, Event = type, Payload = payload, CreatedAt = now, NextAttemptAt = now,
            });
    }

    /// <summary>
    /// The door the event came through, the seed's metadata.source: self-registration, the pages, a sign-in through an
    /// external provider, the OAuth endpoints, the resource APIs, SCIM, or the server itself (jobs, seeding).
    /// </summary>
    static string SourceOf(HttpContext? http) => http?.Request.Path switch
    {
        null => "system",
        var path when path.Value.StartsWithSegments(Auth.AuthFacade.Prefix + "/register") => "web_registration",
        var path when path.Value.StartsWithSegments(Auth.AuthFacade.Prefix + "/oauth") || path.Value.StartsWithSegments(Federation.FederationSetup.CallbackPrefix.TrimEnd('/'))
            || path.Value.StartsWithSegments("/Account/External") => "federation",
        var path when path.Value.StartsWithSegments("/connect") => "oauth",
        var path when path.Value.StartsWithSegments(Scim.ScimApi.Prefix) => "scim",
        var path when path.Value.StartsWithSegments(Hosting.ApiErrors.ApiPrefix) || path.Value.StartsWithSegments("/v1") || path.Value.StartsWithSegments("/access") => "api",
        _ => "web",
    };

    /// <summary>An event with no other change to carry it (a failed login, a logout): stored at once.</summary>
    public async Task RaiseNowAsync(string type, Subject? subject, object? details = null, bool success = true)
    {
        await RaiseAsync(type, subject, details, success);
        await db.SaveChangesAsync();
    }

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        Converters = { new Hosting.JsonShape.UtcTimes() },
    };
}
