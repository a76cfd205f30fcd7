using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Identity.Server.Tests.Hosting;

/// <summary>On Kestrel: ASP.NET Core counts requests in its hosting layer, which the in-memory test server skips.</summary>
public sealed class MetricsServer() : KestrelServer(
[
    new("Identity:Metrics:Enabled", "true"),
    new("Identity:Clients:6:ClientId", MetricsTests.Scraper),
    new("Identity:Clients:6:ClientSecret", MetricsTests.ScraperSecret),
    new("Identity:Clients:6:GrantTypes:0", "client_credentials"),
    new("Identity:Clients:6:Scopes:0", "metrics"),
]);

/// <summary>
/// Meters are shared by the whole test process, so these classes run alone, one after the other: another class's
/// failed logins would show up in the counts, and a second server with metrics would take over the measurements of
/// ASP.NET Core's meters (same names) while it runs.
/// </summary>
[CollectionDefinition(nameof(MetricsTests), DisableParallelization = true)]
public sealed class MetricsCollection;

/// <summary>/metrics as Prometheus scrapes it: with a token it fetched by client credentials (its oauth2 block).</summary>
[Collection(nameof(MetricsTests))]
public sealed class MetricsTests(MetricsServer server) : ServerTests<MetricsServer>(server)
{
    public const string Scraper = "prometheus";
    public const string ScraperSecret = "prometheus-secret-0123456789abcdef012345";

    async Task<string> ClientTokenAsync(string clientId, string secret, string scope)
    {
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Scope = scope,
        });
        Assert.False(response.IsError, response.Error);
        return response.AccessToken!;
    }

    async Task<HttpResponseMessage> GetMetricsAsync(string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        if (token is not null)
            request.SetBearerToken(token);
        return await Http.SendAsync(request);
    }

    /// <summary>The scrape, as series: "name{label="value",...}" with its labels sorted, and its value.</summary>
    async Task<Dictionary<string, double>> ScrapeAsync(string token)
    {
        var response = await GetMetricsAsync(token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var series = new Dictionary<string, double>();
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            var match = Regex.Match(line, """^(\w+)(?:\{(.*)\})? (\S+)""");
            if (!match.Success)
                continue;
            var labels = Regex.Matches(match.Groups[2].Value, """(\w+)="((?:[^"\\]|\\.)*)"\s*,?""").Select(m => $"{m.Groups[1].Value}={m.Groups[2].Value}").Order(StringComparer.Ordinal);
            series[$"{match.Groups[1].Value}{{{string.Join(",", labels)}}}"] = double.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        return series;
    }

    /// <summary>The sum of the series of <paramref name="name"/> that carry every one of <paramref name="labels"/> (absent: 0).</summary>
    static double Sum(Dictionary<string, double> scrape, string name, params string[] labels) =>
        scrape.Where(s => s.Key.StartsWith(name + "{", StringComparison.Ordinal) &&
                          labels.All(l => s.Key[(name.Length + 1)..^1].Split(',').Contains(l)))
            .Sum(s => s.Value);

    [Fact]
    public async Task Metrics_AreOnlyForAClientTokenWithTheMetricsScope()
    {
        var email = await CreateUserAsync("admin");
        var user = await LoginAsync(email);
        var service = await ClientTokenAsync(ServerFactory.Service, ServerFactory.ServiceSecret, "identity");
        var scraper = await ClientTokenAsync(Scraper, ScraperSecret, "metrics");

        Assert.Equal(HttpStatusCode.Unauthorized, (await GetMetricsAsync(null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetMetricsAsync("not-a-token")).StatusCode);
        // An administrator's token acts for a person, and the service's has no metrics scope.
        Assert.Equal(HttpStatusCode.Forbidden, (await GetMetricsAsync(user)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetMetricsAsync(service)).StatusCode);
        var answer = await GetMetricsAsync(scraper);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.StartsWith("text/plain", answer.Content.Headers.ContentType!.MediaType);
        Assert.Contains("# TYPE identity_oauth_responses_total counter", await answer.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TokenAnswers_AreCountedByGrantTypeAndError_AnUnknownGrantTypeAsOther()
    {
        var scraper = await ClientTokenAsync(Scraper, ScraperSecret, "metrics");
        var before = await ScrapeAsync(scraper);

        await ClientTokenAsync(ServerFactory.Service, ServerFactory.ServiceSecret, ServerFactory.DownstreamScope);
        await ClientTokenAsync(ServerFactory.Service, ServerFactory.ServiceSecret, ServerFactory.DownstreamScope);
        var wrongSecret = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = "not the secret", Scope = ServerFactory.DownstreamScope,
        });
        Assert.Equal(HttpStatusCode.Unauthorized, wrongSecret.HttpStatusCode);
        var madeUp = await Http.RequestTokenAsync(new TokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, GrantType = "urn:example:made-up-" + Guid.NewGuid(),
        });
        Assert.Equal("unsupported_grant_type", madeUp.Error);
        Assert.False((await IntrospectAsync("not-a-token")).IsActive);

        var after = await ScrapeAsync(scraper);
        double Delta(params string[] labels) => Sum(after, "identity_oauth_responses_total", labels) - Sum(before, "identity_oauth_responses_total", labels);
        Assert.Equal(2, Delta("endpoint=token", "grant_type=client_credentials", "outcome=success"));
        Assert.Equal(1, Delta("endpoint=token", "grant_type=client_credentials", "outcome=failure", "error=invalid_client"));
        Assert.Equal(1, Delta("endpoint=token", "grant_type=other", "outcome=failure", "error=unsupported_grant_type"));
        // An unknown token is an active=false answer, not an error (RFC 7662).
        Assert.Equal(1, Delta("endpoint=introspection", "outcome=success"));
        Assert.Equal(4, Delta("endpoint=token"));
        Assert.DoesNotContain(after.Keys, k => k.Contains("made-up", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SecurityEvents_AreCountedByTypeAndOutcome()
    {
        var scraper = await ClientTokenAsync(Scraper, ScraperSecret, "metrics");
        var email = await CreateUserAsync();
        var before = await ScrapeAsync(scraper);

        await LoginAsync(email);
        var (status, _, _) = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = "not the password at all" });
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_grant", (await PasswordGrantAsync(email, "not the password either")).Error);

        var after = await ScrapeAsync(scraper);
        double Delta(params string[] labels) => Sum(after, "identity_security_events_total", labels) - Sum(before, "identity_security_events_total", labels);
        Assert.Equal(1, Delta("event=auth.login", "outcome=success"));
        Assert.Equal(2, Delta("event=auth.failed", "outcome=failure"));
        Assert.Equal(3, Delta());
    }

    [Fact]
    public async Task RequestAndRuntimeMetrics_AreServedBeside_TheServersOwn()
    {
        var scraper = await ClientTokenAsync(Scraper, ScraperSecret, "metrics");
        await ClientTokenAsync(ServerFactory.Service, ServerFactory.ServiceSecret, ServerFactory.DownstreamScope);

        // ASP.NET Core records a request's duration once its answer has gone out, so the client may be a moment ahead.
        var scrape = await ScrapeAsync(scraper);
        for (var tries = 0; tries < 50 && Sum(scrape, "http_server_request_duration_seconds_count", "http_route=/connect/token", "http_response_status_code=200") < 2; tries++)
        {
            await Task.Delay(100);
            scrape = await ScrapeAsync(scraper);
        }
        Assert.True(Sum(scrape, "http_server_request_duration_seconds_count", "http_route=/connect/token", "http_response_status_code=200") >= 2);
        Assert.True(Sum(scrape, "aspnetcore_authentication_authenticate_duration_seconds_count") > 0);
        Assert.True(Sum(scrape, "kestrel_active_connections") > 0);
        Assert.True(Sum(scrape, "dotnet_gc_heap_total_allocated_bytes_total") > 0);
    }
}

/// <summary>The same metrics pushed to an OpenTelemetry collector (a real HTTP receiver of OTLP's protobuf).</summary>
[Collection(nameof(MetricsTests))]
public sealed class OtlpMetricsTests
{
    [Fact]
    public async Task Metrics_ArePushedOverOtlp_ToTheCollectorOpenTelemetrysVariablesName()
    {
        var received = new ConcurrentQueue<string>();
        var (collector, url) = LoopbackServer.Start(web => web.MapPost("/v1/metrics", async (HttpContext http) =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            // Protobuf keeps names as UTF-8 text: enough to see which metrics came.
            if (http.Request.ContentType == "application/x-protobuf")
                received.Enqueue(Encoding.UTF8.GetString(body.ToArray()));
            return Results.Ok();
        }));
        await using var _ = collector;
        await using var pushing = new ServerFactory(DatabaseSettings.Sqlite(), overrides:
        [
            new("Identity:Metrics:Enabled", "true"),
            new("OTEL_EXPORTER_OTLP_ENDPOINT", url),
            new("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            new("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ]);
        var http = pushing.CreateClient();
        var token = await http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = ServerFactory.DownstreamScope,
        });
        Assert.False(token.IsError, token.Error);

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!received.Any(r => r.Contains("identity.oauth.responses", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Contains(received, r => r.Contains("identity.oauth.responses", StringComparison.Ordinal) && r.Contains("client_credentials", StringComparison.Ordinal));
    }
}

/// <summary>Traces pushed to an OpenTelemetry collector (a real HTTP receiver of OTLP's protobuf), when tracing is on.</summary>
[Collection(nameof(MetricsTests))]
public sealed class OtlpTracingTests
{
    [Fact]
    public async Task Traces_ArePushedOverOtlp_ContinuingTheCallersTrace_WithoutQueryValues()
    {
        var received = new ConcurrentQueue<byte[]>();
        var (collector, url) = LoopbackServer.Start(web => web.MapPost("/v1/traces", async (HttpContext http) =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            received.Enqueue(body.ToArray());
            return Results.Ok();
        }));
        await using var _ = collector;
        await using var tracing = new ServerFactory(DatabaseSettings.Sqlite(), overrides:
        [
            new("Identity:Tracing:Enabled", "true"),
            new("OTEL_EXPORTER_OTLP_ENDPOINT", url),
            new("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            new("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ]);
        var http = tracing.CreateClient();
        var traceId = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        var traceparent = $"00-{Convert.ToHexStringLower(traceId)}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8))}-01";
        var login = new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = "openid",
        };
        login.Headers.Add("traceparent", traceparent);
        Assert.False((await http.RequestPasswordTokenAsync(login)).IsError);
        using var authorize = new HttpRequestMessage(HttpMethod.Get, $"/connect/authorize?client_id={ServerFactory.Web}&state=secret-state-value");
        authorize.Headers.Add("traceparent", traceparent);
        await http.SendAsync(authorize);

        static bool Has(byte[] body, byte[] part) => body.AsSpan().IndexOf(part) >= 0;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!received.Any(b => Has(b, traceId) && Has(b, Encoding.UTF8.GetBytes("/connect/authorize"))) && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        var spans = received.Where(b => Has(b, traceId)).ToList();

        // Protobuf keeps the trace id as its 16 bytes and names as UTF-8 text.
        Assert.Contains(spans, b => Has(b, Encoding.UTF8.GetBytes("/connect/token")));
        // The password grant read the account: a database span in the same trace.
        Assert.Contains(spans, b => Has(b, Encoding.UTF8.GetBytes("sqlite")));
        Assert.DoesNotContain(received, b => Has(b, Encoding.UTF8.GetBytes("secret-state-value")));
    }
}
