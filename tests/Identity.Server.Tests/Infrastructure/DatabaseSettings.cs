using Npgsql;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>A fresh, empty database for one server: a temporary SQLite file, or a new database on a real PostgreSQL.</summary>
public sealed class DatabaseSettings
{
    public required string Provider { get; init; }
    public required string ConnectionString { get; init; }
    public required Action Drop { get; init; }

    public static DatabaseSettings Sqlite()
    {
        var folder = Directory.CreateTempSubdirectory("identity-db-").FullName;
        return new()
        {
            Provider = "Sqlite",
            ConnectionString = $"Data Source={Path.Combine(folder, "identity.db")};Pooling=False",
            Drop = () => { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); },
        };
    }

    /// <summary>
    /// On the server named by IDENTITY_TEST_POSTGRES (an Npgsql connection string; .ci/run starts one), or else on
    /// a throwaway cluster this test run starts itself from the machine's PostgreSQL binaries.
    /// </summary>
    public static DatabaseSettings PostgreSql()
    {
        var server = Environment.GetEnvironmentVariable("IDENTITY_TEST_POSTGRES") ?? PostgresCluster.Shared.ConnectionString;
        var name = "identity_test_" + Guid.NewGuid().ToString("N")[..12];
        var connection = new NpgsqlConnectionStringBuilder(server) { Database = name, Pooling = false }.ConnectionString;
        return new()
        {
            Provider = "PostgreSql",
            ConnectionString = connection,
            Drop = () =>
            {
                using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false }.ConnectionString);
                admin.Open();
                using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", admin);
                drop.ExecuteNonQuery();
            },
        };
    }
}
