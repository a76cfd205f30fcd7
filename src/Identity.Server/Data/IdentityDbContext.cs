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
    public DbSet<Policies.StoredPolicy> StoredPolicies => Set<Policies.StoredPolicy>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();
        builder.Entity<User>().Property(u => u.Name).HasMaxLength(256);
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
            challenge.HasOne<User>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
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
    // number (UTC ticks with the offset packed in), it can.
    protected override void ConfigureConventions(ModelConfigurationBuilder configuration) =>
        configuration.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
}

public sealed class PostgreSqlIdentityDbContext(DbContextOptions<PostgreSqlIdentityDbContext> options) : IdentityDbContext(options);

public sealed class SqlServerIdentityDbContext(DbContextOptions<SqlServerIdentityDbContext> options) : IdentityDbContext(options);
