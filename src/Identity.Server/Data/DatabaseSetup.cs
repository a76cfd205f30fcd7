using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Identity.Server.Data;

public enum DatabaseProvider { Sqlite, PostgreSql, SqlServer }

public sealed class DatabaseOptions
{
    public const string Section = "Identity:Database";
    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Sqlite;
}

public static class DatabaseSetup
{
    public const string DefaultSqliteConnection = "Data Source=data/identity.db";

    public static WebApplicationBuilder AddIdentityDatabase(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(DatabaseOptions.Section).Get<DatabaseOptions>() ?? new();
        var connection = builder.Configuration.GetConnectionString("Identity");

        switch (options.Provider)
        {
            case DatabaseProvider.Sqlite:
                connection = PrepareSqlite(connection ?? DefaultSqliteConnection, builder.Environment.ContentRootPath);
                builder.Services.AddDbContextPool<IdentityDbContext, SqliteIdentityDbContext>((services, o) => o.UseSqlite(connection).AddInterceptors(SqlitePragmas.Instance, services.GetRequiredService<Audit.AuditChain>(), Policies.DirectoryChanges.Instance));
                break;
            case DatabaseProvider.PostgreSql:
                connection = PreparePostgreSql(Require(connection, options.Provider));
                builder.Services.AddDbContextPool<IdentityDbContext, PostgreSqlIdentityDbContext>((services, o) => o.UseNpgsql(connection).AddInterceptors(services.GetRequiredService<Audit.AuditChain>(), Policies.DirectoryChanges.Instance));
                break;
            case DatabaseProvider.SqlServer:
                builder.Services.AddDbContextPool<IdentityDbContext, SqlServerIdentityDbContext>((services, o) => o.UseSqlServer(Require(connection, options.Provider)).AddInterceptors(services.GetRequiredService<Audit.AuditChain>(), Policies.DirectoryChanges.Instance));
                break;
        }

        builder.Services.AddSingleton<Audit.AuditChain>();
        // Registered here, first, so the schema is current before any other start-up work touches the database
        // (Data Protection loads its key ring from it as the host starts).
        builder.Services.AddHostedService<Migrator>();
        builder.Services.AddHealthChecks().AddDbContextCheck<IdentityDbContext>("database", tags: ["ready"]);
        return builder;
    }

    static string Require(string? connection, DatabaseProvider provider) =>
        string.IsNullOrWhiteSpace(connection)
            ? throw new InvalidOperationException($"Identity:Database:Provider is {provider}: set ConnectionStrings:Identity (ConnectionStrings__Identity).")
            : connection;

    /// <summary>
    /// PostgreSQL parses and plans every statement it is sent, unless the statement is prepared on that connection.
    /// Npgsql prepares a connection's most used statements itself once Max Auto Prepare is set, which it is not by
    /// default: a refresh's three statements are then only bound and run, about a fifth more refreshes per second
    /// (README.md, Benchmarks). The token endpoints' statements, about a dozen, fit with room to spare. An operator's
    /// own setting wins: behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode before
    /// 1.21), Max Auto Prepare=0 turns it off.
    /// </summary>
    static string PreparePostgreSql(string connection)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connection };
        if (given.ContainsKey("Max Auto Prepare") || given.ContainsKey("MaxAutoPrepare"))
            return connection;
        return new Npgsql.NpgsqlConnectionStringBuilder(connection) { MaxAutoPrepare = AutoPreparedStatements }.ConnectionString;
    }

    const int AutoPreparedStatements = 32;

    // A relative SQLite file is placed under the content root, and its folder is created, so a fresh clone runs as is.
    static string PrepareSqlite(string connection, string contentRoot)
    {
        var csb = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connection);
        if (csb.DataSource is { Length: > 0 } file && file != ":memory:" && csb.Mode != Microsoft.Data.Sqlite.SqliteOpenMode.Memory)
        {
            csb.DataSource = Path.GetFullPath(file, contentRoot);
            Directory.CreateDirectory(Path.GetDirectoryName(csb.DataSource)!);
        }
        return csb.ToString();
    }
}

/// <summary>
/// SQLite's defaults are for a single writer that fsyncs every commit. A server writes a token row per token issued:
/// write-ahead logging lets readers run beside the writer, synchronous=NORMAL (safe with WAL: a crash loses no
/// committed data, a power cut at most the last commits) drops the fsync per commit, and busy_timeout makes a
/// writer wait for the lock instead of failing under load. The settings belong to the native connection, which
/// Microsoft.Data.Sqlite pools and EF Core opens again for most requests, so they are applied once per native connection.
/// </summary>
sealed class SqlitePragmas : Microsoft.EntityFrameworkCore.Diagnostics.DbConnectionInterceptor
{
    public static readonly SqlitePragmas Instance = new();
    const string Pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;";
    readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> configured = new();

    public override void ConnectionOpened(System.Data.Common.DbConnection connection, Microsoft.EntityFrameworkCore.Diagnostics.ConnectionEndEventData eventData)
    {
        if (IsConfigured(connection))
            return;
        using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        command.ExecuteNonQuery();
        MarkConfigured(connection);
    }

    public override async Task ConnectionOpenedAsync(System.Data.Common.DbConnection connection,
        Microsoft.EntityFrameworkCore.Diagnostics.ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (IsConfigured(connection))
            return;
        await using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        await command.ExecuteNonQueryAsync(cancellationToken);
        MarkConfigured(connection);
    }

    bool IsConfigured(System.Data.Common.DbConnection connection) =>
        connection is Microsoft.Data.Sqlite.SqliteConnection { Handle: { } handle } && configured.TryGetValue(handle, out _);

    void MarkConfigured(System.Data.Common.DbConnection connection)
    {
        if (connection is Microsoft.Data.Sqlite.SqliteConnection { Handle: { } handle })
            configured.TryAdd(handle, this);
    }
}

/// <summary>Applies pending migrations at start: a fresh database, or an upgraded server, needs no manual step.</summary>
sealed class Migrator(IServiceProvider services) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDbContext>();
        await db.Database.MigrateAsync(cancellationToken);
        // Before anything at start-up (seeding) appends to the audit log.
        await services.GetRequiredService<Audit.AuditChain>().RelinkIfNewKeyAsync(db, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

// Design-time factories: `dotnet ef migrations add X --context <Provider>IdentityDbContext --output-dir Data/Migrations/<Provider>`.
// The connection strings are placeholders; migrations are generated without connecting.
public sealed class SqliteDesignFactory : IDesignTimeDbContextFactory<SqliteIdentityDbContext>
{
    public SqliteIdentityDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteIdentityDbContext>().UseSqlite("Data Source=design.db").Options);
}

public sealed class PostgreSqlDesignFactory : IDesignTimeDbContextFactory<PostgreSqlIdentityDbContext>
{
    public PostgreSqlIdentityDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgreSqlIdentityDbContext>().UseNpgsql("Host=localhost").Options);
}

public sealed class SqlServerDesignFactory : IDesignTimeDbContextFactory<SqlServerIdentityDbContext>
{
    public SqlServerIdentityDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqlServerIdentityDbContext>().UseSqlServer("Server=localhost").Options);
}
