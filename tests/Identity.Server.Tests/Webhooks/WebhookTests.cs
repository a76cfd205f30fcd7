using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Webhooks;

/// <summary>Signed, retried, durable webhook delivery to a real receiver.</summary>
public sealed class WebhookTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    const string Secret = "whsec_0123456789abcdefghijklmnopqrstuv";

    async Task<string> SubscribeAsync(string admin, string url, object retry, params string[] events)
    {
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/webhooks", admin, new { url, events, secret = Secret, retry_policy = retry });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return created.Body.GetProperty("webhook").GetProperty("id").GetString()!;
    }

    async Task<JsonElement> DeliveriesAsync(string admin, string id) =>
        (await ApiAsync(HttpMethod.Get, $"/api/v1/webhooks/{id}/deliveries", admin)).Body.GetProperty("deliveries");

    [Fact]
    public async Task Webhook_SignedPayload_RetriedUntilTheReceiverAccepts()
    {
        await using var receiver = new WebhookReceiver(Secret) { FailFirst = 2 };
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var hook = await SubscribeAsync(admin, receiver.Url, new { max_attempts = 4, initial_delay = 1, backoff_multiplier = 1 }, "user.created");
        var email = $"hooked-{Guid.NewGuid():N}@example.test";

        await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password, name = "Hooked" });
        var received = await receiver.WaitForAsync(3, TimeSpan.FromSeconds(30));

        Assert.Equal([500, 500, 200], received.Select(r => r.AnsweredWith));
        Assert.All(received, r => Assert.True(r.SignatureValid, r.Signature));
        Assert.Single(received.Select(r => r.Id).Distinct());
        Assert.All(received, r => Assert.True(long.TryParse(r.Timestamp, out _)));
        using var payload = JsonDocument.Parse(received[^1].Body);
        Assert.Equal("user.created", payload.RootElement.GetProperty("event").GetString());
        Assert.Equal(received[0].Id, payload.RootElement.GetProperty("id").GetString());
        Assert.Equal(email, payload.RootElement.GetProperty("data").GetProperty("user").GetProperty("email").GetString());
        Assert.True(payload.RootElement.TryGetProperty("timestamp", out _));

        JsonElement delivery = default;
        for (var i = 0; i < 50 && delivery.ValueKind == JsonValueKind.Undefined; i++, await Task.Delay(100))
            delivery = (await DeliveriesAsync(admin, hook)).EnumerateArray().FirstOrDefault(d => d.GetProperty("status").GetString() == "delivered");
        Assert.Equal(3, delivery.GetProperty("attempts").GetInt32());
        Assert.Equal([500, 500, 200], delivery.GetProperty("attempt_log").EnumerateArray().Select(a => a.GetProperty("status_code").GetInt32()));
    }

    [Fact]
    public async Task Webhook_Payload_CarriesTheUsersRolesAfterTheChange_TheSource_AndUtcTimes()
    {
        await using var receiver = new WebhookReceiver(Secret);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        await SubscribeAsync(admin, receiver.Url, new { max_attempts = 3 }, "user.created", "role.assigned", "role.removed", "session.expired");
        var email = $"shape-{Guid.NewGuid():N}@example.test";
        var role = $"auditor-{Guid.NewGuid():N}";

        await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password, name = "Shape" });
        var id = (await ApiAsync(HttpMethod.Get, $"/api/v1/users?search={Uri.EscapeDataString(email)}", admin)).Body.GetProperty("users")[0].GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.Created, (await ApiAsync(HttpMethod.Post, "/api/v1/roles", admin, new { name = role, permissions = new[] { "audit:read" } })).Status);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Post, $"/api/v1/users/{id}/roles", admin, new { role_id = role })).Status);
        var createdEmail = $"made-{Guid.NewGuid():N}@example.test";
        Assert.Equal(HttpStatusCode.Created, (await ApiAsync(HttpMethod.Post, "/api/v1/users", admin, new { email = createdEmail, password = Password, roles = new[] { role } })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await ApiAsync(HttpMethod.Delete, $"/api/v1/roles/{role}", admin)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(HttpMethod.Delete, $"/api/v1/users/{id}/sessions", admin)).Status);
        // user.created twice, role.assigned twice (by the API, at creation), role.removed twice (the role's deletion), session.expired.
        var events = (await receiver.WaitForAsync(7, TimeSpan.FromSeconds(30))).Select(r => JsonDocument.Parse(r.Body).RootElement).ToList();

        JsonElement Find(string type, string who) => Assert.Single(events, e => e.GetProperty("event").GetString() == type
            && e.GetProperty("data").GetProperty("user").GetProperty("email").GetString() == who);
        string[] Roles(JsonElement e) => [.. e.GetProperty("data").GetProperty("user").GetProperty("roles").EnumerateArray().Select(r => r.GetString()!)];
        string? Source(JsonElement e) => e.GetProperty("data").GetProperty("metadata").GetProperty("source").GetString();
        string? Detail(JsonElement e, string name) => e.GetProperty("data").GetProperty("details").GetProperty(name).GetString();

        var registered = Find("user.created", email);
        Assert.Equal(["user"], Roles(registered));
        Assert.Equal("web_registration", Source(registered));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", registered.GetProperty("timestamp").GetString());
        var assigned = Find("role.assigned", email);
        Assert.Equal([role, "user"], Roles(assigned));
        Assert.Equal("api", Source(assigned));
        var made = Find("user.created", createdEmail);
        Assert.Equal([role, "user"], Roles(made));
        Assert.Equal("at_creation", Detail(Find("role.assigned", createdEmail), "reason"));
        foreach (var who in new[] { email, createdEmail })
        {
            var removed = Find("role.removed", who);
            Assert.Equal(["user"], Roles(removed));
            Assert.Equal(role, Detail(removed, "role"));
            Assert.Equal("role_deleted", Detail(removed, "reason"));
        }
        Assert.Equal("revoked", Detail(Find("session.expired", email), "reason"));
    }

    [Fact]
    public async Task Webhook_OneSubscriptionsEventsArriveInTheOrderTheyHappened_EvenAcrossRetries()
    {
        await using var receiver = new WebhookReceiver(Secret) { FailFirst = 2 };
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        await SubscribeAsync(admin, receiver.Url, new { max_attempts = 5, initial_delay = 1, backoff_multiplier = 1 }, "user.created");
        var emails = Enumerable.Range(0, 3).Select(i => $"ordered-{i}-{Guid.NewGuid():N}@example.test").ToList();

        // The first event's delivery fails twice; the later ones must wait behind it, not overtake it.
        foreach (var email in emails)
            await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password });
        var received = await receiver.WaitForAsync(5, TimeSpan.FromSeconds(30));

        var accepted = received.Where(r => r.AnsweredWith == 200)
            .Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("data").GetProperty("user").GetProperty("email").GetString()!).ToList();
        Assert.Equal(emails, accepted);
        Assert.All(received.Where(r => r.AnsweredWith == 500), r => Assert.Contains(emails[0], r.Body));
    }

    [Fact]
    public async Task Webhook_GivesUpAfterTheLastAttempt_AndRaisesWebhookFailed()
    {
        await using var receiver = new WebhookReceiver(Secret) { FailFirst = int.MaxValue };
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var hook = await SubscribeAsync(admin, receiver.Url, new { max_attempts = 2, initial_delay = 0, backoff_multiplier = 1 }, "user.created");

        await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email = $"doomed-{Guid.NewGuid():N}@example.test", password = Password });
        await receiver.WaitForAsync(2, TimeSpan.FromSeconds(30));

        JsonElement failed = default;
        for (var i = 0; i < 50 && failed.ValueKind == JsonValueKind.Undefined; i++, await Task.Delay(100))
            failed = (await DeliveriesAsync(admin, hook)).EnumerateArray().FirstOrDefault(d => d.GetProperty("status").GetString() == "failed");
        Assert.Equal(2, failed.GetProperty("attempts").GetInt32());
        var alerts = await ApiAsync(HttpMethod.Get, "/api/v1/audit?action=webhook.failed", admin);
        Assert.Contains(alerts.Body.GetProperty("entries").EnumerateArray(), e => e.GetProperty("details").GetProperty("webhook").GetString() == hook);
    }

    [Theory]
    [InlineData("ftp://example.com/hook", "user.created", Secret, "url")]
    [InlineData("https://example.com/hook", "user.exploded", Secret, "events")]
    [InlineData("https://example.com/hook", "user.created", "too-short", "secret")]
    public async Task Webhook_BadSubscription_Is400(string url, string eventType, string secret, string field)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/webhooks", admin, new { url, events = new[] { eventType }, secret });

        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        Assert.Equal(field, answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
    }

    /// <summary>"NaN" passes every comparison-based bound; it must be refused, not fail later as a 500 when stored.</summary>
    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    public async Task Webhook_NonNumericBackoff_Is400(string multiplier)
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/webhooks", admin,
            new { url = "https://example.com/hook", events = new[] { "user.created" }, secret = Secret, retry_policy = new { backoff_multiplier = multiplier } });

        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
        Assert.Equal("retry_policy.backoff_multiplier", answer.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
    }

    /// <summary>A change names only what changes (as a user's does): turning a webhook off keeps its URL, events and secret.</summary>
    [Fact]
    public async Task Webhook_Update_ChangesOnlyWhatItGives()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var id = await SubscribeAsync(admin, "https://example.com/hook", new { max_attempts = 3 }, "user.created", "auth.login");

        var disabled = await ApiAsync(HttpMethod.Put, $"/api/v1/webhooks/{id}", admin, new { enabled = false });
        var badUrl = await ApiAsync(HttpMethod.Put, $"/api/v1/webhooks/{id}", admin, new { url = "ftp://example.com/hook" });

        Assert.Equal(HttpStatusCode.OK, disabled.Status);
        var hook = disabled.Body.GetProperty("webhook");
        Assert.False(hook.GetProperty("enabled").GetBoolean());
        Assert.Equal("https://example.com/hook", hook.GetProperty("url").GetString());
        Assert.Equal(["user.created", "auth.login"], hook.GetProperty("events").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(3, hook.GetProperty("retry_policy").GetProperty("max_attempts").GetInt32());
        Assert.Equal("INVALID_REQUEST", ErrorCode(badUrl));
        var stored = (await ApiAsync(HttpMethod.Get, $"/api/v1/webhooks/{id}", admin)).Body.GetProperty("webhook");
        Assert.Equal("https://example.com/hook", stored.GetProperty("url").GetString());
    }

    [Fact]
    public async Task Webhook_NeedsThePermission_AndNeverShowsTheSecret()
    {
        var user = await LoginAsync(await CreateUserAsync());
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        await SubscribeAsync(admin, "https://example.com/hook", new { max_attempts = 3 }, "*");

        Assert.Equal("FORBIDDEN", ErrorCode(await ApiAsync(HttpMethod.Get, "/api/v1/webhooks", user)));
        var list = await ApiAsync(HttpMethod.Get, "/api/v1/webhooks", admin);
        Assert.DoesNotContain(Secret, list.Body.ToString());
    }
}

/// <summary>What survives a restart, and the SSRF guard outside Development.</summary>
public sealed class WebhookHostingTests : IDisposable
{
    const string Secret = "whsec_0123456789abcdefghijklmnopqrstuv";
    readonly DatabaseSettings database = DatabaseSettings.Sqlite();
    readonly string keys = Directory.CreateTempSubdirectory("identity-keys-").FullName;

    public void Dispose()
    {
        database.Drop();
        Directory.Delete(keys, recursive: true);
    }

    static async Task<string> AdminTokenAsync(HttpClient http)
    {
        var login = await http.PostAsJsonAsync("/api/v1/auth/login", new { email = ServerFactory.AdminEmail, password = ServerFactory.AdminPassword });
        return JsonDocument.Parse(await login.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;
    }

    [Fact]
    public async Task Webhook_PendingRetryResumesAfterARestart()
    {
        await using var receiver = new WebhookReceiver(Secret) { FailFirst = 1 };
        await using (var first = new ServerFactory(database, keys))
        {
            var http = first.CreateClient();
            http.DefaultRequestHeaders.Authorization = new("Bearer", await AdminTokenAsync(http));
            var created = await http.PostAsJsonAsync("/api/v1/webhooks", new
            {
                url = receiver.Url, events = new[] { "user.created" }, secret = Secret,
                retry_policy = new { max_attempts = 3, initial_delay = 3, backoff_multiplier = 1 },
            });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            await http.PostAsJsonAsync("/api/v1/auth/register", new { email = $"restart-{Guid.NewGuid():N}@example.test", password = "a long enough passphrase" });
            Assert.Single(await receiver.WaitForAsync(1, TimeSpan.FromSeconds(20)));
        }   // stopped with the retry pending

        await using var second = new ServerFactory(database, keys);
        second.CreateClient();
        var received = await receiver.WaitForAsync(2, TimeSpan.FromSeconds(30));

        Assert.Equal([500, 200], received.Select(r => r.AnsweredWith));
        Assert.Equal(received[0].Body, received[1].Body);
        Assert.All(received, r => Assert.True(r.SignatureValid));
    }

    [Fact]
    public async Task Webhook_HangingReceiver_TimesOutAndIsRetried()
    {
        await using var receiver = new WebhookReceiver(Secret) { HangFirst = 1 };
        await using var server = new ServerFactory(database, keys, [new("Identity:Webhooks:Timeout", "00:00:01")]);
        var http = server.CreateClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", await AdminTokenAsync(http));
        var created = await http.PostAsJsonAsync("/api/v1/webhooks", new
        {
            url = receiver.Url, events = new[] { "user.created" }, secret = Secret,
            retry_policy = new { max_attempts = 3, initial_delay = 1, backoff_multiplier = 1 },
        });
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("webhook").GetProperty("id").GetString();

        await http.PostAsJsonAsync("/api/v1/auth/register", new { email = $"hang-{Guid.NewGuid():N}@example.test", password = "a long enough passphrase" });
        var received = await receiver.WaitForAsync(2, TimeSpan.FromSeconds(30));
        JsonElement delivery = default;
        for (var i = 0; i < 50 && delivery.ValueKind == JsonValueKind.Undefined; i++, await Task.Delay(100))
            delivery = JsonDocument.Parse(await http.GetStringAsync($"/api/v1/webhooks/{id}/deliveries")).RootElement.GetProperty("deliveries")
                .EnumerateArray().FirstOrDefault(d => d.GetProperty("status").GetString() == "delivered");

        Assert.Equal([0, 200], received.Select(r => r.AnsweredWith));
        var attempts = delivery.GetProperty("attempt_log").EnumerateArray().ToList();
        Assert.Equal(2, attempts.Count);
        Assert.Contains("No answer within 1 s", attempts[0].GetProperty("error").GetString());
        Assert.Equal(200, attempts[1].GetProperty("status_code").GetInt32());
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/hook")]
    [InlineData("http://10.1.2.3/hook")]
    [InlineData("http://169.254.169.254/latest/meta-data")]
    [InlineData("http://localhost/hook")]
    [InlineData("http://[::1]/hook")]
    [InlineData("http://[64:ff9b::7f00:1]/hook")]
    [InlineData("http://[2002:a9fe:a9fe::]/hook")]
    [InlineData("http://198.18.0.1/hook")]
    public async Task Webhook_PrivateAddresses_RefusedUnlessAllowed(string url)
    {
        await using var server = new ServerFactory(database, keys, [new("Identity:Webhooks:AllowPrivateNetworks", "false")]);
        var http = server.CreateClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", await AdminTokenAsync(http));

        var answer = await http.PostAsJsonAsync("/api/v1/webhooks", new { url, events = new[] { "*" }, secret = Secret });

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.Contains("\"url\"", await answer.Content.ReadAsStringAsync());
    }
}
