using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace Identity.Server.Hosting;

public static class Health
{
    /// <summary>/health: the process answers (liveness). /health/ready: the database answers too (readiness).</summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/health", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });
        return app;
    }
}
