using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Identity.Server.Data;

/// <summary>
/// The one database of the server: ASP.NET Core Identity's users and roles and OpenIddict's
/// applications, authorizations, scopes and tokens live side by side so a change to a user and
/// the revocation of their tokens can share a transaction. Data Protection keys live here too, so every instance
/// of the server reads the same key ring (cookies, antiforgery and protected secrets survive a restart or a scale-out).
/// </summary>
public class IdentityDbContext(DbContextOptions options)
    : Microsoft.AspNetCore.Identity.EntityFrameworkCore.IdentityDbContext<User, Role, string>(options), IDataProtectionKeyContext
{
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();
    public DbSet<Organization> Organizations => Set<Organization>();
    public DbSet<Mfa.MfaFactor> MfaFactors => Set<Mfa.MfaFactor>();
    public DbSet<Mfa.MfaBackupCode> MfaBackupCodes => Set<Mfa.MfaBackupCode>();
    public DbSet<Mfa.MfaChallenge> MfaChallenges => Set<Mfa.MfaChallenge>();
    public DbSet<Audit.AuditEntry> AuditEntries => Set<Audit.AuditEntry>();
    public DbSet<Webhooks.WebhookSubscription> WebhookSubscriptions => Set<Webhooks.WebhookSubscription>();
    public DbSet<Webhooks.WebhookDelivery> WebhookDeliveries => Set<Webhooks.WebhookDelivery>();
    public DbSet<Webhooks.WebhookAttempt> WebhookAttempts => Set<Webhooks.WebhookAttempt>();
    public DbSet<Sessions.SessionInfo> Sessions => Set<Sessions.SessionInfo>();
    public DbSet<Sessions.LogoutNotice> LogoutNotices => Set<Sessions.LogoutNotice>();
    public DbSet<Connect.UsedClientAssertion> UsedClientAssertions => Set<Connect.UsedClientAssertion>();
    public DbSet<Policies.StoredPolicy> StoredPolicies => Set<Policies.StoredPolicy>();
    public DbSet<Federation.FederationState> FederationStates => Set<Federation.FederationState>();
    public DbSet<Group> Groups => Set<Group>();
    public DbSet<GroupMember> GroupMembers => Set<GroupMember>();

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        var saved = false;
        try
        {
            var count = base.SaveChanges(acceptAllChangesOnSuccess);
            saved = true;
            return count;
        }
        finally
        {
            Audit.AuditChain.Settle(this, saved);
        }
    }

    public override async Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        var saved = false;
        try
        {
            var count = await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
            saved = true;
            return count;
        }
        finally
        {
            Audit.AuditChain.Settle(this, saved);
        }
    }

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();
        builder.Entity<User>(user =>
        {
            user.Property(u => u.Name).HasMaxLength(256);
            user.Property(u => u.GivenName).HasMaxLength(256);
            user.Property(u => u.FamilyName).HasMaxLength(256);
            user.Property(u => u.ExternalId).HasMaxLength(256);
            user.HasIndex(u => u.ExternalId);
        });
        builder.Entity<Group>(group =>
        {
            group.Property(g => g.Id).HasMaxLength(64);
            group.Property(g => g.DisplayName).HasMaxLength(256);
            group.Property(g => g.NormalizedName).HasMaxLength(256);
            group.Property(g => g.ExternalId).HasMaxLength(256);
            group.Property(g => g.OrganizationId).HasMaxLength(64);
            group.HasIndex(g => new { g.OrganizationId, g.NormalizedName }).IsUnique();
            // Every provider lets rows whose OrganizationId is null past that index (SQLite and PostgreSQL count nulls
            // as distinct, SQL Server's is filtered to non-null ones), so server-wide names need one of their own.
            group.HasIndex(g => g.NormalizedName).IsUnique()
                .HasFilter(Database.IsSqlServer() ? "[OrganizationId] IS NULL" : "\"OrganizationId\" IS NULL");
            group.HasOne<Organization>().WithMany().HasForeignKey(g => g.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<GroupMember>(member =>
        {
            member.HasKey(m => new { m.GroupId, m.UserId });
            member.Property(m => m.GroupId).HasMaxLength(64);
            member.Property(m => m.UserId).HasMaxLength(450);
            member.HasIndex(m => m.UserId);
            member.HasOne<Group>().WithMany().HasForeignKey(m => m.GroupId).OnDelete(DeleteBehavior.Cascade);
            member.HasOne<User>().WithMany().HasForeignKey(m => m.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Role>().Property(r => r.Description).HasMaxLength(1024);
        builder.Entity<Organization>(org =>
        {
            org.Property(o => o.Id).HasMaxLength(64);
            org.Property(o => o.Domain).HasMaxLength(253);
            org.Property(o => o.Name).HasMaxLength(256);
            org.HasIndex(o => o.Domain).IsUnique();
        });
        builder.Entity<Mfa.MfaFactor>(factor =>
        {
            factor.HasKey(f => f.UserId);
            factor.Property(f => f.UserId).HasMaxLength(450);
            factor.Property(f => f.ProtectedSecret).HasMaxLength(2048);
            factor.Property(f => f.BackupSalt).HasMaxLength(64);
            factor.HasOne<User>().WithOne().HasForeignKey<Mfa.MfaFactor>(f => f.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Mfa.MfaBackupCode>(code =>
        {
            code.Property(c => c.UserId).HasMaxLength(450);
            code.Property(c => c.Hash).HasMaxLength(128);
            code.HasIndex(c => c.UserId);
            code.HasOne<User>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Mfa.MfaChallenge>(challenge =>
        {
            challenge.Property(c => c.Id).HasMaxLength(64);
            challenge.Property(c => c.UserId).HasMaxLength(450);
            challenge.Property(c => c.ClientId).HasMaxLength(100);
            challenge.Property(c => c.IdentityProvider).HasMaxLength(32);
            challenge.HasOne<User>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Federation.FederationState>(state =>
        {
            state.Property(s => s.Id).HasMaxLength(64);
            state.Property(s => s.Provider).HasMaxLength(32);
            state.Property(s => s.RedirectUri).HasMaxLength(2000);
            state.Property(s => s.CodeChallenge).HasMaxLength(128);
            state.HasIndex(s => s.ExpiresAt);
        });
        builder.Entity<Audit.AuditEntry>(entry =>
        {
            entry.HasIndex(e => e.Sequence).IsUnique();
            entry.HasIndex(e => new { e.SubjectId, e.Timestamp });
            entry.HasIndex(e => e.Action);
            entry.Property(e => e.EventId).HasMaxLength(64);
            entry.Property(e => e.Action).HasMaxLength(64);
            entry.Property(e => e.ActorId).HasMaxLength(450);
            entry.Property(e => e.SubjectId).HasMaxLength(450);
            entry.Property(e => e.OrganizationId).HasMaxLength(64);
            entry.Property(e => e.Ip).HasMaxLength(64);
            entry.Property(e => e.UserAgent).HasMaxLength(512);
            entry.Property(e => e.Outcome).HasMaxLength(16);
            entry.Property(e => e.PreviousHash).HasMaxLength(64);
            entry.Property(e => e.Hash).HasMaxLength(64);
        });
        builder.Entity<Webhooks.WebhookSubscription>(subscription =>
        {
            subscription.Property(s => s.Id).HasMaxLength(64);
            subscription.Property(s => s.Url).HasMaxLength(2048);
            subscription.Property(s => s.Events).HasMaxLength(2048);
            subscription.Property(s => s.ProtectedSecret).HasMaxLength(2048);
            subscription.Property(s => s.OrganizationId).HasMaxLength(64);
        });
        builder.Entity<Webhooks.WebhookDelivery>(delivery =>
        {
            delivery.Property(d => d.SubscriptionId).HasMaxLength(64);
            delivery.Property(d => d.EventId).HasMaxLength(64);
            delivery.Property(d => d.Event).HasMaxLength(64);
            delivery.Property(d => d.Status).HasMaxLength(16);
            delivery.HasIndex(d => new { d.Status, d.NextAttemptAt });
            delivery.HasIndex(d => d.SubscriptionId);
            delivery.HasOne<Webhooks.WebhookSubscription>().WithMany().HasForeignKey(d => d.SubscriptionId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Webhooks.WebhookAttempt>(attempt =>
        {
            attempt.HasIndex(a => a.DeliveryId);
            attempt.Property(a => a.Error).HasMaxLength(1024);
            attempt.HasOne<Webhooks.WebhookDelivery>().WithMany().HasForeignKey(a => a.DeliveryId).OnDelete(DeleteBehavior.Cascade);
        });
        builder.Entity<Sessions.SessionInfo>(session =>
        {
            session.HasKey(s => s.AuthorizationId);
            session.Property(s => s.AuthorizationId).HasMaxLength(100);
            session.Property(s => s.UserId).HasMaxLength(450);
            session.Property(s => s.ClientId).HasMaxLength(100);
            session.Property(s => s.Sid).HasMaxLength(64);
            session.HasIndex(s => s.Sid);
            session.Property(s => s.Ip).HasMaxLength(64);
            session.Property(s => s.UserAgent).HasMaxLength(512);
            session.Property(s => s.RefreshTokenId).HasMaxLength(64);
            // Ticks on every provider: SQL Server's time, EF Core's default there, holds less than a day.
            session.Property(s => s.RefreshTokenLifetime).HasConversion<long?>();
            session.HasIndex(s => s.UserId);
        });
        builder.Entity<Sessions.LogoutNotice>(notice =>
        {
            notice.Property(n => n.ClientId).HasMaxLength(100);
            notice.Property(n => n.Uri).HasMaxLength(2048);
            notice.Property(n => n.Issuer).HasMaxLength(2048);
            notice.Property(n => n.Subject).HasMaxLength(450);
            notice.Property(n => n.Sid).HasMaxLength(64);
            notice.HasIndex(n => n.NextAttemptAt);
        });
        // ASP.NET Core Identity's passkeys table, mapped here as its schema version 3 maps it: the rest of the schema
        // stays on version 1, which this database was created with (version 2 would shorten key columns).
        builder.Entity<Microsoft.AspNetCore.Identity.IdentityUserPasskey<string>>(passkey =>
        {
            passkey.ToTable("AspNetUserPasskeys");
            passkey.HasKey(p => p.CredentialId);
            passkey.Property(p => p.CredentialId).HasMaxLength(1024);
            passkey.HasOne<User>().WithMany().HasForeignKey(p => p.UserId).IsRequired();
            passkey.OwnsOne(p => p.Data).ToJson();
        });
        builder.Entity<Connect.UsedClientAssertion>(used =>
        {
            used.Property(u => u.Id).HasMaxLength(64);
            used.HasIndex(u => u.ExpiresAt);
        });
        builder.ApplyConfiguration(new Policies.StoredPolicyConfiguration());
        builder.Entity<User>().HasOne(u => u.Organization).WithMany().HasForeignKey(u => u.OrganizationId).OnDelete(DeleteBehavior.SetNull);
    }
}

// One subclass per provider so each keeps its own migrations (Data/Migrations/<Provider>) in this assembly;
// everything else injects the base IdentityDbContext.
public sealed class SqliteIdentityDbContext(DbContextOptions<SqliteIdentityDbContext> options) : IdentityDbContext(options)
{
    // SQLite has no date type: stored as text, DateTimeOffset cannot be ordered or compared in queries. As a
    // number, it can. UTC ticks, exactly: the audit chain hashes timestamps, so they must come back bit for bit
    // (EF's DateTimeOffsetToBinaryConverter drops the low bits). Every timestamp the server writes is UTC.
    protected override void ConfigureConventions(ModelConfigurationBuilder configuration) =>
        configuration.Properties<DateTimeOffset>().HaveConversion<UtcTicks>();

    sealed class UtcTicks() : ValueConverter<DateTimeOffset, long>(v => v.UtcTicks, v => new DateTimeOffset(v, TimeSpan.Zero));
}

public sealed class PostgreSqlIdentityDbContext(DbContextOptions<PostgreSqlIdentityDbContext> options) : IdentityDbContext(options);

public sealed class SqlServerIdentityDbContext(DbContextOptions<SqlServerIdentityDbContext> options) : IdentityDbContext(options);
