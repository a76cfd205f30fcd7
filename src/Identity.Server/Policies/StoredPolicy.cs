using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Identity.Server.Policies;

/// <summary>
/// One Cedar policy of the active set, editable through /api/v1/policies. Its <see cref="Id"/> is the policy id
/// that decisions name in their reasons and errors.
/// </summary>
public sealed class StoredPolicy
{
    public required string Id { get; set; }
    public string? Description { get; set; }

    /// <summary>The Cedar text of exactly one static policy.</summary>
    public required string Text { get; set; }

    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
    public DateTimeOffset UpdatedAt { get; set; } = DateTimeOffset.UtcNow;
}

public sealed class StoredPolicyConfiguration : IEntityTypeConfiguration<StoredPolicy>
{
    public void Configure(EntityTypeBuilder<StoredPolicy> policy)
    {
        policy.ToTable("Policies");
        policy.Property(p => p.Id).HasMaxLength(128);
        policy.Property(p => p.Description).HasMaxLength(1024);
        policy.Property(p => p.Text).HasMaxLength(PoliciesApi.MaxPolicyLength);
        // Seeded by the migration, once: an operator who edits or deletes a default keeps that change.
        var shipped = new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
        policy.HasData(DefaultPolicies.All.Select(d => new StoredPolicy
        {
            Id = d.Id, Description = d.Description, Text = d.Text, Enabled = true, CreatedAt = shipped, UpdatedAt = shipped,
        }));
    }
}

/// <summary>
/// The shipped policies: tenant isolation, organization members may read their organization's resources, server
/// admins may do anything, and everything else is denied because nothing permits it.
/// </summary>
public static class DefaultPolicies
{
    public sealed record Definition(string Id, string Description, string Text);

    public static readonly Definition[] All =
    [
        new("tenant-isolation", "Nobody but a server admin acts on a resource of another organization",
            """
            forbid (principal is User, action, resource)
            when { resource has organization && !(principal has organization && principal.organization == resource.organization) }
            unless { principal in Role::"admin" };
            """),
        new("organization-members-read", "Members of an organization may read its resources",
            """
            permit (principal is User, action == Action::"read", resource)
            when { principal has organization && resource in principal.organization };
            """),
        new("admins-all", "Server admins may do anything",
            """
            permit (principal in Role::"admin", action, resource);
            """),
    ];
}
