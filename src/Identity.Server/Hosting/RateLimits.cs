using System.Collections.Concurrent;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OpenIddict.Validation.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Hosting;

public sealed class RateLimitOptions
{
    public const string Section = "Identity:RateLimiting";

    public bool Enabled { get; set; } = true;

    /// <summary>/api/v1/auth/* (login, register, refresh, logout, ...), per client IP.</summary>
    public Limit Authentication { get; set; } = new() { PermitLimit = 10 };

    /// <summary>The other resource APIs, per client IP and per user.</summary>
    public Limit Standard { get; set; } = new() { PermitLimit = 100 };

    /// <summary>Bulk operations (ending all of an account's sessions at once), per client IP and per user.</summary>
    public Limit Bulk { get; set; } = new() { PermitLimit = 5 };

    /// <summary>
    /// Failed password sign-ins on any path (login page, password grant, auth API), per client network (an IPv4
    /// address, an IPv6 /64). Past it, that network's sign-ins are refused until the window ends.
    /// </summary>
    public Limit FailedSignIns { get; set; } = new() { PermitLimit = 20, Window = TimeSpan.FromMinutes(15) };

    public IEnumerable<Limit> All => [Authentication, Standard, Bulk, FailedSignIns];

    public sealed class Limit
    {
        public int PermitLimit { get; set; }
        public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
    }
}

/// <summary>
/// The seed's rate limits: fixed windows counted per client IP and, once the caller is known, per user, with
/// X-RateLimit-Limit/Remaining/Reset on every limited response and Retry-After plus RATE_LIMITED on a 429.
/// Authentication addresses are counted before authentication runs (a flood of logins must not reach the password
/// hasher); the other APIs after, so that the user is known. Health checks and /connect/* are not limited here.
/// </summary>
public static class RateLimits
{
    enum Category { Authentication, Standard, Bulk }

    public static WebApplicationBuilder AddRateLimits(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section)
            .Validate(o => o.All.All(l => l.PermitLimit > 0 && l.Window > TimeSpan.Zero), "Rate limits and windows must be positive.")
            .ValidateOnStart();
        builder.Services.AddSingleton<RateLimitCounters>();
        return builder;
    }

    /// <summary>Before authentication: the authentication addresses, by IP.</summary>
    public static WebApplication UseAuthenticationRateLimits(this WebApplication app) => Use(app, anonymousPhase: true);

    /// <summary>After authentication: the resource APIs, by IP and by user.</summary>
    public static WebApplication UseApiRateLimits(this WebApplication app) => Use(app, anonymousPhase: false);

    static WebApplication Use(WebApplication app, bool anonymousPhase)
    {
        var options = app.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        var counters = app.Services.GetRequiredService<RateLimitCounters>();
        var time = app.Services.GetRequiredService<TimeProvider>();
        if (!options.Enabled)
            return app;

        app.Use(async (http, next) =>
        {
            var category = CategoryOf(http.Request);
            if (category is null || (category == Category.Authentication) != anonymousPhase)
            {
                await next(http);
                return;
            }

            var limit = category switch
            {
                Category.Authentication => options.Authentication,
                Category.Bulk => options.Bulk,
                _ => options.Standard,
            };
            var ip = http.Connection.RemoteIpAddress?.ToString() ?? "local";
            var verdict = counters.Take($"{category}|ip|{ip}", limit);
            if (!anonymousPhase && await UserOfAsync(http) is { } user)
                verdict = RateLimitCounters.Tighter(verdict, counters.Take($"{category}|user|{user}", limit));

            http.Response.Headers["X-RateLimit-Limit"] = limit.PermitLimit.ToString();
            http.Response.Headers["X-RateLimit-Remaining"] = verdict.Remaining.ToString();
            http.Response.Headers["X-RateLimit-Reset"] = verdict.Reset.ToUnixTimeSeconds().ToString();
            if (verdict.Allowed)
            {
                await next(http);
                return;
            }

            var retryAfter = SetRetryAfter(http, verdict.Reset - time.GetUtcNow());
            if (ApiErrors.IsScim(http.Request.Path))
            {
                await Scim.ScimErrors.Result(StatusCodes.Status429TooManyRequests, null, $"Too many requests: retry after {retryAfter} s.").ExecuteAsync(http);
                return;
            }
            await ApiErrors.Result(http, StatusCodes.Status429TooManyRequests, "RATE_LIMITED", "Too many requests.",
                new { limit = limit.PermitLimit, window_seconds = (int)limit.Window.TotalSeconds, retry_after = retryAfter }).ExecuteAsync(http);
        });
        return app;
    }

    /// <summary>Sets Retry-After for <paramref name="wait"/>, in whole seconds (at least one), and returns them.</summary>
    public static int SetRetryAfter(HttpContext http, TimeSpan wait)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString();
        return seconds;
    }

    static Category? CategoryOf(HttpRequest request)
    {
        var path = request.Path;
        if (path.StartsWithSegments("/api/v1/auth/me"))
            return Category.Standard;
        // Self-registration of clients counts like sign-ups: per address, before anything is written.
        if (path.StartsWithSegments("/api/v1/auth") || path.StartsWithSegments(Clients.DynamicRegistration.Path) ||
            HttpMethods.IsPost(request.Method) && path.StartsWithSegments("/Account/Register"))
            return Category.Authentication;
        // The seed's bulk operations: its one request that acts on a whole collection, DELETE /sessions (and the
        // admin's form of it). Batches of policy decisions are reads a service makes all day: they stay standard.
        if (HttpMethods.IsDelete(request.Method) && (path.Equals("/api/v1/sessions", StringComparison.OrdinalIgnoreCase) || IsUsersSessions(path)))
            return Category.Bulk;
        if (path.StartsWithSegments("/api/v1") || path.StartsWithSegments("/scim/v2") || path.StartsWithSegments("/v1/authorize") || path.StartsWithSegments("/access/v1"))
            return Category.Standard;
        return null;
    }

    /// <summary>/api/v1/users/{id}/sessions itself, not one session under it.</summary>
    static bool IsUsersSessions(PathString path) =>
        path.StartsWithSegments("/api/v1/users", out var rest) && rest.Value?.Trim('/').Split('/') is [_, var last] &&
        last.Equals("sessions", StringComparison.OrdinalIgnoreCase);

    // OpenIddict keeps the result of validating the request's token, so the endpoint's own check does not redo it.
    static async Task<string?> UserOfAsync(HttpContext http)
    {
        if (!http.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return null;
        var result = await http.AuthenticateAsync(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme);
        return result.Principal?.FindFirst(Claims.Subject)?.Value;
    }
}

/// <summary>Fixed-window counters, one per (category, IP or user).</summary>
public sealed class RateLimitCounters(IOptions<RateLimitOptions> options, TimeProvider time)
{
    sealed class Window
    {
        public DateTimeOffset Start;
        public int Count;
    }

    public readonly record struct Verdict(bool Allowed, int Remaining, DateTimeOffset Reset);

    readonly ConcurrentDictionary<string, Window> windows = new();
    readonly TimeSpan longest = options.Value.All.Max(l => l.Window);
    long taken;

    public static Verdict Tighter(Verdict a, Verdict b) =>
        new(a.Allowed && b.Allowed, Math.Min(a.Remaining, b.Remaining), a.Reset > b.Reset ? a.Reset : b.Reset);

    /// <summary>The verdict <see cref="Take"/> would give, without taking anything.</summary>
    public Verdict Peek(string key, RateLimitOptions.Limit limit) =>
        windows.TryGetValue(key, out var window) ? Judge(window, limit, time.GetUtcNow(), take: false)
            : new Verdict(true, limit.PermitLimit, time.GetUtcNow() + limit.Window);

    public Verdict Take(string key, RateLimitOptions.Limit limit)
    {
        var now = time.GetUtcNow();
        if (Interlocked.Increment(ref taken) % 4096 == 0)
            Prune(now);
        return Judge(windows.GetOrAdd(key, _ => new Window { Start = now }), limit, now, take: true);
    }

    Verdict Judge(Window window, RateLimitOptions.Limit limit, DateTimeOffset now, bool take)
    {
        lock (window)
        {
            if (now - window.Start >= limit.Window)
            {
                // An ended window starts again when something is taken; a peek leaves it as it is.
                if (!take)
                    return new Verdict(true, limit.PermitLimit, now + limit.Window);
                (window.Start, window.Count) = (now, 0);
            }
            var allowed = window.Count < limit.PermitLimit;
            if (allowed && take)
                window.Count++;
            return new Verdict(allowed, limit.PermitLimit - window.Count, window.Start + limit.Window);
        }
    }

    // Windows of clients that went quiet are dropped, so memory follows the active clients, not every IP ever seen.
    void Prune(DateTimeOffset now)
    {
        foreach (var (key, value) in windows)
            if (now - value.Start >= longest)
                windows.TryRemove(key, out _);
    }
}
