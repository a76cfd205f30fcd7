namespace Identity.Server.Audit;

/// <summary>
/// One line of the append-only audit log. <see cref="Hash"/> covers the entry's content and the previous entry's
/// hash, so changing, removing or reordering any stored entry breaks every link after it (see /api/v1/audit/verify).
/// </summary>
public sealed class AuditEntry
{
    public long Id { get; set; }

    /// <summary>Position in the chain, gapless from 1; unique, so two writers cannot both extend the same link.</summary>
    public long Sequence { get; set; }

    public required string EventId { get; set; }
    public DateTimeOffset Timestamp { get; set; }
    public required string Action { get; set; }
    public string? ActorId { get; set; }
    public string? SubjectId { get; set; }
    public string? OrganizationId { get; set; }
    public string? Ip { get; set; }
    public string? UserAgent { get; set; }
    public required string Outcome { get; set; }
    public string? Details { get; set; }
    public string PreviousHash { get; set; } = "";
    public string Hash { get; set; } = "";
}
