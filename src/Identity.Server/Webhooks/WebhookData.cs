using Identity.Server.Events;

namespace Identity.Server.Webhooks;

/// <summary>A receiver of events. Its secret signs every payload; it is kept encrypted (Data Protection).</summary>
public sealed class WebhookSubscription
{
    public string Id { get; set; } = "wh_" + Guid.NewGuid().ToString("N");
    public required string Url { get; set; }

    /// <summary>Space-separated event types; "*" for all.</summary>
    public required string Events { get; set; }

    public required string ProtectedSecret { get; set; }
    public int MaxAttempts { get; set; } = 3;
    public int InitialDelaySeconds { get; set; } = 1;
    public double BackoffMultiplier { get; set; } = 2;
    public bool Enabled { get; set; } = true;

    /// <summary>Set when an organization admin owns it: it receives only that organization's events.</summary>
    public string? OrganizationId { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public bool Wants(string type)
    {
        var wanted = Events.Split(' ');
        // Revocations were session.revoked before the seed's session.expired ("timeout or invalidation") took them
        // in: a subscription stored with the old name receives session.expired.
        return Events == "*" || wanted.Contains(type, StringComparer.Ordinal) || (type == EventTypes.SessionExpired && wanted.Contains("session.revoked"));
    }
}

/// <summary>The outbox: one event for one subscription, written with the change that raised it, delivered by Quartz.</summary>
public sealed class WebhookDelivery
{
    public long Id { get; set; }
    public required string SubscriptionId { get; set; }
    public required string EventId { get; set; }
    public required string Event { get; set; }

    /// <summary>The exact bytes that are sent and signed.</summary>
    public required string Payload { get; set; }

    public string Status { get; set; } = WebhookStatus.Pending;
    public int Attempts { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? NextAttemptAt { get; set; }
}

public static class WebhookStatus
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string Failed = "failed";
}

/// <summary>One try at delivering, kept for GET /api/v1/webhooks/{id}/deliveries.</summary>
public sealed class WebhookAttempt
{
    public long Id { get; set; }
    public long DeliveryId { get; set; }
    public int Number { get; set; }
    public DateTimeOffset AttemptedAt { get; set; }
    public int? StatusCode { get; set; }
    public long DurationMs { get; set; }
    public string? Error { get; set; }
}
