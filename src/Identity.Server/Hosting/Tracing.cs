using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Identity.Server.Hosting;

/// <summary>
/// Distributed traces over OTLP, when Identity:Tracing:Enabled is set (off by default, as Keycloak's tracing-enabled):
/// a span for each request the server answers (continuing the caller's W3C traceparent), for each call it makes (an
/// external provider, a client's jwks_uri, webhooks, back-channel logout) and for each database command, sent to the
/// collector that OpenTelemetry's own variables name (OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, _HEADERS).
/// Addresses are recorded without their query values (OpenTelemetry redacts them), so no state, code or
/// login_hint leaves the server, and database spans carry statements, never their parameters' values.
/// </summary>
public static class Tracing
{
    public static WebApplicationBuilder AddTracing(this WebApplicationBuilder builder)
    {
        if (!builder.Configuration.GetValue<bool>("Identity:Tracing:Enabled"))
            return builder;
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("identity"))
            .WithTracing(tracing => tracing
                // Probes and scrapes every few seconds would bury the requests that matter.
                .AddAspNetCoreInstrumentation(options => options.Filter = http =>
                    !http.Request.Path.StartsWithSegments("/health") && !http.Request.Path.StartsWithSegments(ServerMetrics.Path))
                .AddHttpClientInstrumentation()
                .AddEntityFrameworkCoreInstrumentation()
                // Npgsql's own spans, with the server's address and the statement.
                .AddSource("Npgsql")
                .AddOtlpExporter());
        return builder;
    }
}
