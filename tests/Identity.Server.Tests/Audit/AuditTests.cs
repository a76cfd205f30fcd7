using System.Net;
using System.Text.Json;
using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Audit;

public sealed class SqliteAuditTests(SqliteServer server) : AuditTests<SqliteServer>(server);
public sealed class PostgreSqlAuditTests(PostgreSqlServer server) : AuditTests<PostgreSqlServer>(server);

/// <summary>The audit log: what gets recorded, who may read it, and the hash chain that shows tampering.</summary>
public abstract class AuditTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    /// <summary>
    /// A save that carries audit entries and loses an optimistic concurrency race (two admins changing one client) fails
    /// alone: the audit log's append order is not left held, so the next audited write goes through.
    /// </summary>
    [Fact]
    public async Task Audit_AConcurrencyConflict_DoesNotHoldUpLaterAuditedWrites()
    {
        using var first = Factory.Services.CreateScope();
        using var second = Factory.Services.CreateScope();
        var winner = first.ServiceProvider.GetRequiredService<IdentityDbContext>();
        var loser = second.ServiceProvider.GetRequiredService<IdentityDbContext>();
        var clients = (IdentityDbContext db) => db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>();
        var seenByWinner = await clients(winner).SingleAsync(a => a.ClientId == ServerFactory.Service);
        var seenByLoser = await clients(loser).SingleAsync(a => a.ClientId == ServerFactory.Service);

        seenByWinner.ConcurrencyToken = Guid.NewGuid().ToString();
        await winner.SaveChangesAsync();
        seenByLoser.ConcurrencyToken = Guid.NewGuid().ToString();
        await second.ServiceProvider.GetRequiredService<Identity.Server.Events.SecurityEvents>()
            .RaiseAsync(Identity.Server.Events.EventTypes.ClientUpdated, null, new { client_id = ServerFactory.Service });
        await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => loser.SaveChangesAsync());

        await AuditedWriteAsync();
    }

    /// <summary>
    /// The database fails while a save links its audit entries (a connection lost as the chain's last link is read):
    /// that save fails alone, and the next audited write goes through and links on from where the chain really ends.
    /// </summary>
    [Fact]
    public async Task Audit_AFailureWhileLinking_DoesNotHoldUpLaterAuditedWrites()
    {
        using var scope = Factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDbContext>();
        // The server's own options (its audit chain included), plus a database that fails the chain's read.
        var options = (DbContextOptions)Microsoft.EntityFrameworkCore.Infrastructure.AccessorExtensions.GetService<Microsoft.EntityFrameworkCore.Infrastructure.IDbContextOptions>(db);
        var core = options.FindExtension<Microsoft.EntityFrameworkCore.Infrastructure.CoreOptionsExtension>()!;
        var failing = options.WithExtension(core.WithInterceptors([.. core.Interceptors ?? [], new FailingChainRead()]));
        await using (var broken = (IdentityDbContext)Activator.CreateInstance(db.GetType(), failing)!)
        {
            await scope.ServiceProvider.GetRequiredService<Identity.Server.Events.SecurityEvents>()
                .RaiseAsync(Identity.Server.Events.EventTypes.ClientUpdated, null, new { client_id = ServerFactory.Service });
            var pending = db.ChangeTracker.Entries<Identity.Server.Audit.AuditEntry>().Single(e => e.State == EntityState.Added).Entity;
            db.Entry(pending).State = EntityState.Detached;
            broken.AuditEntries.Add(pending);
            await Assert.ThrowsAsync<InvalidOperationException>(() => broken.SaveChangesAsync());
        }

        await AuditedWriteAsync();
        var verified = await ApiAsync(HttpMethod.Get, "/api/v1/audit/verify", await AdminAsync());
        Assert.True(verified.Body.GetProperty("valid").GetBoolean(), verified.Body.ToString());
    }

    /// <summary>An audited write of its own (client.updated), which must be saved within 15 s: a gate left held hangs it.</summary>
    async Task AuditedWriteAsync()
    {
        using var scope = Factory.Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<Identity.Server.Events.SecurityEvents>()
            .RaiseAsync(Identity.Server.Events.EventTypes.ClientUpdated, null, new { client_id = ServerFactory.Service });
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await scope.ServiceProvider.GetRequiredService<IdentityDbContext>().SaveChangesAsync(patience.Token);
    }

    sealed class FailingChainRead : Microsoft.EntityFrameworkCore.Diagnostics.DbCommandInterceptor
    {
        public override ValueTask<Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<System.Data.Common.DbDataReader>> ReaderExecutingAsync(
            System.Data.Common.DbCommand command, Microsoft.EntityFrameworkCore.Diagnostics.CommandEventData eventData,
            Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<System.Data.Common.DbDataReader> result, CancellationToken cancellationToken = default) =>
            command.CommandText.Contains("AuditEntries") && command.CommandText.Contains("DESC")
                ? throw new InvalidOperationException("The connection to the database was lost.")
                : ValueTask.FromResult(result);
    }

    [Fact]
    public async Task Audit_RecordsTheLifeOfAnAccount_NewestFirst_WithoutSecrets()
    {
        var email = $"audited-{Guid.NewGuid():N}@example.test";
        var registered = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = "SecurePass123!", name = "Audited" });
        var id = registered.Body.GetProperty("user").GetProperty("id").GetString();
        await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = "wrong password, sorry" });
        var admin = await AdminAsync();
        await ApiAsync(HttpMethod.Post, $"/api/v1/users/{id}/roles", admin, new { role_id = "org_admin" });

        var log = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}", admin);
        var failures = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}&action=auth.failed", admin);

        Assert.Equal(HttpStatusCode.OK, log.Status);
        var entries = log.Body.GetProperty("entries").EnumerateArray().ToList();
        Assert.Equal(["role.assigned", "auth.failed", "auth.login", "user.created"], entries.Select(e => e.GetProperty("action").GetString()));
        Assert.True(entries.Zip(entries.Skip(1)).All(p => p.First.GetProperty("sequence").GetInt64() > p.Second.GetProperty("sequence").GetInt64()));
        Assert.Equal("failure", entries[1].GetProperty("outcome").GetString());
        Assert.Equal("wrong_password", entries[1].GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal("org_admin", entries[0].GetProperty("details").GetProperty("role").GetString());
        Assert.Equal("pwd", Assert.Single(entries[2].GetProperty("details").GetProperty("amr").EnumerateArray()).GetString());
        Assert.DoesNotContain("SecurePass123!", log.Body.ToString());
        Assert.DoesNotContain("wrong password, sorry", log.Body.ToString());
        Assert.Equal(1, failures.Body.GetProperty("total").GetInt32());
    }

    async Task<List<System.Text.Json.JsonElement>> EntriesAsync(string admin, string query) =>
        (await ApiAsync(HttpMethod.Get, $"/api/v1/audit?limit=100&{query}", admin)).Body.GetProperty("entries").EnumerateArray().ToList();

    /// <summary>A new role and where events are sent are security changes: each is logged with the change itself.</summary>
    [Fact]
    public async Task Audit_RecordsRolesAndWebhooks()
    {
        var admin = await AdminAsync();
        var role = $"auditor-{Guid.NewGuid():N}"[..20];
        await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = role, permissions = new[] { "audit:read" } });
        var hook = (await ApiAsync(HttpMethod.Post, "/api/v1/webhooks", admin,
            new { url = "https://example.com/hook", events = new[] { "*" }, secret = new string('s', 32) })).Body.GetProperty("webhook").GetProperty("id").GetString();
        await ApiAsync(HttpMethod.Put, $"/api/v1/webhooks/{hook}", admin,
            new { url = "https://example.com/other", events = new[] { "user.created" }, secret = new string('t', 32) });
        await ApiAsync(HttpMethod.Delete, $"/api/v1/webhooks/{hook}", admin);

        var roleEntry = Assert.Single(await EntriesAsync(admin, "action=role.created"), e => e.GetProperty("details").GetProperty("role").GetString() == role);
        var hookEntries = (await EntriesAsync(admin, "action=webhook.created"))
            .Concat(await EntriesAsync(admin, "action=webhook.updated")).Concat(await EntriesAsync(admin, "action=webhook.deleted"))
            .Where(e => e.GetProperty("details").GetProperty("webhook").GetString() == hook).Select(e => e.GetProperty("action").GetString()).Order().ToList();

        Assert.Equal("audit:read", roleEntry.GetProperty("details").GetProperty("permissions")[0].GetString());
        Assert.Equal(["webhook.created", "webhook.deleted", "webhook.updated"], hookEntries);
        Assert.DoesNotContain(new string('s', 32), (await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=100", admin)).Body.ToString());
    }

    /// <summary>
    /// Only what happened is logged: an update that changes nothing, a second end of an ended session and an MFA reset
    /// of an account without MFA log nothing; and an event known by its user's id still carries their organization.
    /// </summary>
    [Fact]
    public async Task Audit_NothingForChangesThatDidNotHappen_AndEveryUserEventHasItsOrganization()
    {
        var admin = await AdminAsync();
        var email = await CreateUserInAsync($"acme-{Guid.NewGuid():N}.test");
        var token = await LoginAsync(email);
        var id = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(email)}", admin)).Body.GetProperty("users")[0].GetProperty("id").GetString();
        var session = (await ApiAsync(HttpMethod.Get, "/api/v1/sessions", token)).Body.GetProperty("sessions")[0].GetProperty("id").GetString();

        var nothing = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { });
        var sameName = await ApiAsync(HttpMethod.Put, $"/api/v1/users/{id}", admin, new { name = "Test User" });
        var resetWithoutMfa = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/mfa", admin);
        var ended = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/sessions/{session}", admin);
        var endedAgain = await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/sessions/{session}", admin);

        Assert.Equal(HttpStatusCode.OK, nothing.Status);
        Assert.Equal(HttpStatusCode.OK, sameName.Status);
        Assert.Equal(HttpStatusCode.NoContent, resetWithoutMfa.Status);
        Assert.Equal(HttpStatusCode.NoContent, ended.Status);
        Assert.Equal(HttpStatusCode.NotFound, endedAgain.Status);
        var actions = (await EntriesAsync(admin, $"user_id={id}")).Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.DoesNotContain("user.updated", actions);
        Assert.DoesNotContain("mfa.disabled", actions);
        Assert.Single(await EntriesAsync(admin, $"user_id={id}&action=session.expired"));

        // Logging out by refresh token knows the user only by the token's subject.
        var refresh = (await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password })).Body.GetProperty("refresh_token").GetString();
        Assert.Equal(HttpStatusCode.NoContent, (await ApiAsync(HttpMethod.Post, "/api/v1/auth/logout", body: new { refresh_token = refresh })).Status);
        var logout = Assert.Single(await EntriesAsync(admin, $"user_id={id}&action=auth.logout"));
        Assert.NotNull(logout.GetProperty("organization").GetString());
    }

    [Fact]
    public async Task Audit_OrgAdminSeesOnlyTheirOrganizationsEntries()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var orgAdmin = await CreateUserInAsync($"acme-{tag}.test", "org_admin");
        var colleague = await CreateUserInAsync($"acme-{tag}.test");
        var outsider = await CreateUserInAsync($"globex-{tag}.test");
        await LoginAsync(colleague);
        await LoginAsync(outsider);
        var token = await LoginAsync(orgAdmin);

        var log = await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=100", token);
        var verify = await ApiAsync(HttpMethod.Get, "/api/v1/audit/verify", token);

        Assert.Equal(HttpStatusCode.OK, log.Status);
        var entries = log.Body.GetProperty("entries").EnumerateArray().ToList();
        var organizations = entries.Select(e => e.GetProperty("organization").GetString()).Distinct().ToList();
        Assert.Single(organizations);
        Assert.NotNull(organizations[0]);
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "auth.login");
        var admin = await AdminAsync();
        var outsiderEntries = (await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=100", admin)).Body.GetProperty("entries").EnumerateArray()
            .Where(e => e.GetProperty("organization").GetString() is { } org && org != organizations[0]).ToList();
        Assert.NotEmpty(outsiderEntries);
        Assert.Equal("FORBIDDEN", ErrorCode(verify));
    }

    [Fact]
    public async Task Audit_NeedsAuditRead_AndValidatesItsQuery()
    {
        var user = await LoginAsync(await CreateUserAsync());
        var admin = await AdminAsync();

        Assert.Equal("FORBIDDEN", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/audit", user)));
        Assert.Equal("UNAUTHORIZED", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/audit")));
        Assert.Equal("INVALID_REQUEST", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/audit?from=yesterday", admin)));
        Assert.Equal("INVALID_REQUEST", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/audit?limit=500", admin)));
        var window = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?from={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(-10).ToString("O"))}&to={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"))}&limit=5", admin);
        Assert.Equal(HttpStatusCode.OK, window.Status);
        Assert.InRange(window.Body.GetProperty("entries").GetArrayLength(), 1, 5);
    }

    [Fact]
    public async Task Audit_ChainVerifies_AndATamperedEntryIsFound()
    {
        await CreateUserAsync();
        var admin = await AdminAsync();
        var before = await ApiAsync(HttpMethod.Get, "/api/v1/audit/verify", admin);
        Assert.True(before.Body.GetProperty("valid").GetBoolean(), before.Body.ToString());
        Assert.True(before.Body.GetProperty("checked").GetInt64() > 0);

        long tampered;
        using (var scope = Factory.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDbContext>();
            tampered = await db.AuditEntries.Where(a => a.Action == "auth.login").OrderBy(a => a.Sequence).Select(a => a.Sequence).FirstAsync();
            await db.AuditEntries.Where(a => a.Sequence == tampered).ExecuteUpdateAsync(s => s.SetProperty(a => a.Outcome, "failure"));
        }
        var after = await ApiAsync(HttpMethod.Get, "/api/v1/audit/verify", admin);

        Assert.False(after.Body.GetProperty("valid").GetBoolean());
        Assert.Equal(tampered, after.Body.GetProperty("first_broken_sequence").GetInt64());

        using (var scope = Factory.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<IdentityDbContext>().AuditEntries
                .Where(a => a.Sequence == tampered).ExecuteUpdateAsync(s => s.SetProperty(a => a.Outcome, "success"));
        Assert.True((await ApiAsync(HttpMethod.Get, "/api/v1/audit/verify", admin)).Body.GetProperty("valid").GetBoolean());
    }

    [Fact]
    public async Task Audit_ConcurrentEvents_KeepOneUnbrokenChain()
    {
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ApiAsync(HttpMethod.Post, "/api/v1/auth/login",
            body: new { email = $"nobody-{Guid.NewGuid():N}@example.test", password = "not the password" })));

        var verify = await ApiAsync(HttpMethod.Get, "/api/v1/audit/verify", await AdminAsync());

        Assert.True(verify.Body.GetProperty("valid").GetBoolean(), verify.Body.ToString());
    }
}
