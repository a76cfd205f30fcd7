using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Hosting;

/// <summary>
/// On PostgreSQL the server's frequent statements are prepared on their connection, so the database plans them once
/// instead of at every token request; an operator's own Max Auto Prepare (0 behind a pooler that cannot keep prepared
/// statements) is left as given.
/// </summary>
public sealed class PostgreSqlStatementTests
{
    [Fact]
    public async Task ARepeatedStatement_IsPreparedOnItsConnection()
    {
        using var server = new ServerFactory(DatabaseSettings.PostgreSql());
        Assert.True(await PreparedAfterRepeatingAQueryAsync(server) > 0);
    }

    [Fact]
    public async Task TheOperatorsOwnSetting_Wins()
    {
        var database = DatabaseSettings.PostgreSql();
        using var server = new ServerFactory(database, overrides: [new("ConnectionStrings:Identity", database.ConnectionString + ";Max Auto Prepare=0")]);
        Assert.Equal(0, await PreparedAfterRepeatingAQueryAsync(server));
    }

    // The account lookup every renewal makes, run more often than Npgsql's threshold for preparing a statement (5 uses).
    static async Task<long> PreparedAfterRepeatingAQueryAsync(ServerFactory server)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDbContext>();
        await db.Database.OpenConnectionAsync();
        for (var i = 0; i < 8; i++)
            Assert.NotNull(await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Email == ServerFactory.AdminEmail));
        return await db.Database.SqlQueryRaw<long>("SELECT count(*) AS \"Value\" FROM pg_prepared_statements").SingleAsync();
    }
}
