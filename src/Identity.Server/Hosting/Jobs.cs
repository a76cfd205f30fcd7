using Identity.Server.Audit;
using Identity.Server.Sessions;
using Identity.Server.Webhooks;
using Quartz;

namespace Identity.Server.Hosting;

/// <summary>The background work, on Quartz: webhook delivery, session and token pruning, audit retention.</summary>
public static class Jobs
{
    public static WebApplicationBuilder AddJobs(this WebApplicationBuilder builder)
    {
        var poll = builder.Configuration.GetSection(WebhookOptions.Section).Get<WebhookOptions>()?.PollInterval ?? new WebhookOptions().PollInterval;
        builder.Services.AddQuartz(quartz =>
        {
            // Unique per host: Quartz keeps schedulers in a process-wide registry by name.
            quartz.ConfigureScheduler(scheduler => scheduler.InstanceName = "identity-" + Guid.NewGuid().ToString("N"));
            quartz.ScheduleJob<DeliverWebhooks>(trigger => trigger.WithIdentity("deliver-webhooks").StartNow()
                .WithSimpleSchedule(schedule => schedule.WithInterval(poll).RepeatForever()));
            quartz.ScheduleJob<PruneSessions>(trigger => trigger.WithIdentity("prune-sessions").StartAt(DateTimeOffset.UtcNow.AddMinutes(1))
                .WithSimpleSchedule(schedule => schedule.WithInterval(PruneSessions.Interval).RepeatForever()));
            quartz.ScheduleJob<PruneAuditLog>(trigger => trigger.WithIdentity("prune-audit-log").StartAt(DateTimeOffset.UtcNow.AddMinutes(5))
                .WithSimpleSchedule(schedule => schedule.WithInterval(PruneAuditLog.Interval).RepeatForever()));
        });
        builder.Services.AddQuartzHostedService(quartz => quartz.WaitForJobsToComplete = true);
        return builder;
    }
}
