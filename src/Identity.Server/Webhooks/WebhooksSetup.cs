using Identity.Server.Sessions;
using Microsoft.Extensions.Options;
using Quartz;

namespace Identity.Server.Webhooks;

public static class WebhooksSetup
{
    /// <summary>Quartz runs the webhook delivery job and the hourly pruning of expired sessions and tokens.</summary>
    public static WebApplicationBuilder AddWebhooks(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section)
            .Validate(o => o.Timeout > TimeSpan.Zero && o.PollInterval > TimeSpan.Zero, "Webhook timeout and poll interval must be positive.")
            .ValidateOnStart();
        builder.Services.AddHttpClient(DeliverWebhooks.ClientName)
            .ConfigurePrimaryHttpMessageHandler(services => ReceiverAddresses.Handler(WebhooksApi.AllowPrivate(
                services.GetRequiredService<IOptions<WebhookOptions>>(), services.GetRequiredService<IHostEnvironment>())));

        var poll = builder.Configuration.GetSection(WebhookOptions.Section).Get<WebhookOptions>()?.PollInterval ?? new WebhookOptions().PollInterval;
        builder.Services.AddQuartz(quartz =>
        {
            // Unique per host: Quartz keeps schedulers in a process-wide registry by name.
            quartz.ConfigureScheduler(scheduler => scheduler.InstanceName = "identity-" + Guid.NewGuid().ToString("N"));
            quartz.ScheduleJob<DeliverWebhooks>(trigger => trigger.WithIdentity("deliver-webhooks").StartNow()
                .WithSimpleSchedule(schedule => schedule.WithInterval(poll).RepeatForever()));
            quartz.ScheduleJob<PruneSessions>(trigger => trigger.WithIdentity("prune-sessions").StartAt(DateTimeOffset.UtcNow.AddMinutes(1))
                .WithSimpleSchedule(schedule => schedule.WithInterval(PruneSessions.Interval).RepeatForever()));
        });
        builder.Services.AddQuartzHostedService(quartz => quartz.WaitForJobsToComplete = true);
        return builder;
    }
}
