using System.Diagnostics;
using System.Diagnostics.Metrics;
using Identity.Server.Connect;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Validation.AspNetCore;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Hosting;

/// <summary>
/// Metrics in Prometheus' text format at /metrics, when Identity:Metrics:Enabled is set (off by default, as in
/// Keycloak): the server's own counters (<see cref="MeterName"/>), ASP.NET Core's (requests, connections, sign-ins),
/// the runtime's, outgoing HTTP and the database drivers'. The endpoint is one of the server's APIs: it takes a
/// client's own token with the scope <see cref="Scope"/>, which Prometheus fetches itself (its scrape configuration's
/// oauth2 block does client credentials). Counts carry no user, client or token: nothing that identifies anyone, and
/// no label whose values a caller could multiply.
/// </summary>
public static class ServerMetrics
{
    public const string Scope = "metrics";
    public const string Policy = "metrics";
    public const string Path = "/metrics";
    public const string MeterName = "Identity.Server";

    static readonly Meter Meter = new(MeterName);

    static readonly Counter<long> OAuthResponses = Meter.CreateCounter<long>("identity.oauth.responses", "{response}",
        "Answers of the OAuth 2.0 and OpenID Connect endpoints, by endpoint, grant type (token endpoint) and error (failures)");

    static readonly Counter<long> SecurityEvents = Meter.CreateCounter<long>("identity.security.events", "{event}",
        "Security events stored in the audit log, by type and outcome");

    /// <summary>OpenTelemetry's standard variable: where to push the same metrics over OTLP (a collector), besides /metrics.</summary>
    public const string OtlpEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";

    static bool Enabled(IConfiguration configuration) => configuration.GetValue<bool>("Identity:Metrics:Enabled");

    public static WebApplicationBuilder AddMetrics(this WebApplicationBuilder builder)
    {
        if (!Enabled(builder.Configuration))
            return builder;
        var pushTo = builder.Configuration[OtlpEndpoint];
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("identity"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Authentication",
                        "Microsoft.AspNetCore.Authorization", "Microsoft.AspNetCore.Identity", "Microsoft.AspNetCore.RateLimiting", "System.Runtime",
                        "System.Net.Http", "Npgsql", "Microsoft.EntityFrameworkCore")
                    // Every scrape sees the counts of the moment; the exporter would otherwise answer from a copy up to 300 ms old.
                    .AddPrometheusExporter(exporter => exporter.ScrapeResponseCacheDurationMilliseconds = 0);
                // OpenTelemetry's own variables (OTEL_EXPORTER_OTLP_PROTOCOL, _HEADERS, OTEL_METRIC_EXPORT_INTERVAL) apply.
                if (!string.IsNullOrWhiteSpace(pushTo))
                    metrics.AddOtlpExporter();
            });
        builder.Services.AddAuthorizationBuilder().AddPolicy(Policy, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => ServerApi.IsClient(context.User) && context.User.HasScope(Scope)));
        // Only when metrics are on: every token request passes through these.
        builder.Services.AddOpenIddict().AddServer(server =>
        {
            server.AddEventHandler(CountResponse<ApplyAuthorizationResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyPushedAuthorizationResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyTokenResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyIntrospectionResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyRevocationResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyUserInfoResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyDeviceAuthorizationResponseContext>.Descriptor);
            server.AddEventHandler(CountResponse<ApplyEndSessionResponseContext>.Descriptor);
        });
        return builder;
    }

    public static IEndpointRouteBuilder MapMetrics(this WebApplication app)
    {
        if (Enabled(app.Configuration))
            app.MapPrometheusScrapingEndpoint(Path).RequireAuthorization(Policy);
        return app;
    }

    /// <summary>Counts an audit entry once its save has committed (<see cref="Audit.AuditChain.Settle"/>).</summary>
    public static void CountSecurityEvent(string type, string outcome) =>
        SecurityEvents.Add(1, new KeyValuePair<string, object?>("event", type), new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>Counts an endpoint's answer as it goes out: success, or the OAuth error it carries.</summary>
    public sealed class CountResponse<TContext> : IOpenIddictServerHandler<TContext> where TContext : BaseRequestContext
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
            .UseSingletonHandler<CountResponse<TContext>>()
            // First: later handlers write the answer and end the event.
            .SetOrder(int.MinValue + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(TContext context)
        {
            var transaction = context.Transaction;
            var error = transaction.Response?.Error;
            var tags = new TagList
            {
                { "endpoint", EndpointName(context.EndpointType) },
                { "outcome", error is null ? "success" : "failure" },
            };
            // Only grant types the server knows: any other string a caller sends would become a series of its own.
            if (context.EndpointType == OpenIddictServerEndpointType.Token && transaction.Request?.GrantType is { } grantType)
                tags.Add("grant_type", context.Options.GrantTypes.Contains(grantType) ? grantType : "other");
            if (error is not null)
                tags.Add("error", error);
            OAuthResponses.Add(1, tags);
            return ValueTask.CompletedTask;
        }

        static string EndpointName(OpenIddictServerEndpointType endpoint) => endpoint switch
        {
            OpenIddictServerEndpointType.Authorization => "authorization",
            OpenIddictServerEndpointType.PushedAuthorization => "pushed_authorization",
            OpenIddictServerEndpointType.Token => "token",
            OpenIddictServerEndpointType.Introspection => "introspection",
            OpenIddictServerEndpointType.Revocation => "revocation",
            OpenIddictServerEndpointType.UserInfo => "userinfo",
            OpenIddictServerEndpointType.DeviceAuthorization => "device_authorization",
            OpenIddictServerEndpointType.EndSession => "end_session",
            _ => "other",
        };
    }
}
