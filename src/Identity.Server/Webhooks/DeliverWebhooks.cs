using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Quartz;

namespace Identity.Server.Webhooks;

/// <summary>
/// Delivers the outbox: for each subscription, its oldest pending delivery when it is due (so a receiver sees events
/// in the order they happened), signed with the subscription's secret. A failure is retried after
/// initial_delay x backoff_multiplier^(attempt-1) seconds; after max_attempts the delivery fails and raises
/// webhook.failed. Everything is in the database, so a restart resumes where it stopped.
/// </summary>
[DisallowConcurrentExecution]
public sealed class DeliverWebhooks(IdentityDbContext db, IHttpClientFactory clients, IDataProtectionProvider protection,
    SecurityEvents events, TimeProvider time, IOptions<WebhookOptions> options, ILogger<DeliverWebhooks> logger) : IJob
{
    public const string ClientName = "webhooks";
    public const string Protector = "Identity.Webhooks.Secret";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var heads = await db.WebhookDeliveries
            .Where(d => d.Status == WebhookStatus.Pending)
            .GroupBy(d => d.SubscriptionId)
            .Select(g => g.Min(d => d.Id))
            .ToListAsync(cancellationToken);
        var due = await db.WebhookDeliveries.Where(d => heads.Contains(d.Id) && d.NextAttemptAt <= now).ToListAsync(cancellationToken);
        if (due.Count == 0)
            return;
        var ids = due.Select(d => d.SubscriptionId).ToList();
        var subscriptions = await db.WebhookSubscriptions.AsNoTracking().Where(s => ids.Contains(s.Id)).ToDictionaryAsync(s => s.Id, cancellationToken);

        // The receivers are called in parallel; the database is written afterwards, from this thread only.
        var attempts = await Task.WhenAll(due.Select(d => SendAsync(d, subscriptions[d.SubscriptionId], cancellationToken)));
        foreach (var (delivery, attempt) in due.Zip(attempts))
            await RecordAsync(delivery, subscriptions[delivery.SubscriptionId], attempt);
        await db.SaveChangesAsync(cancellationToken);
    }

    async Task<WebhookAttempt> SendAsync(WebhookDelivery delivery, WebhookSubscription subscription, CancellationToken cancellationToken)
    {
        var secret = protection.CreateProtector(Protector).Unprotect(subscription.ProtectedSecret);
        var body = Encoding.UTF8.GetBytes(delivery.Payload);
        using var request = new HttpRequestMessage(HttpMethod.Post, subscription.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json") { CharSet = "utf-8" };
        request.Headers.Add("X-Webhook-Signature", "sha256=" + Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body)).ToLowerInvariant());
        request.Headers.Add("X-Webhook-Id", delivery.EventId);
        request.Headers.Add("X-Webhook-Timestamp", time.GetUtcNow().ToUnixTimeSeconds().ToString());
        request.Headers.Add("X-Webhook-Event", delivery.Event);

        var attempt = new WebhookAttempt { DeliveryId = delivery.Id, Number = delivery.Attempts + 1, AttemptedAt = time.GetUtcNow() };
        var stopwatch = Stopwatch.StartNew();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.Value.Timeout);
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            attempt.StatusCode = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
                attempt.Error = $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            attempt.Error = e is OperationCanceledException ? $"No answer within {options.Value.Timeout.TotalSeconds:0} s." : e.Message[..Math.Min(e.Message.Length, 1000)];
        }
        attempt.DurationMs = stopwatch.ElapsedMilliseconds;
        return attempt;
    }

    async Task RecordAsync(WebhookDelivery delivery, WebhookSubscription subscription, WebhookAttempt attempt)
    {
        db.WebhookAttempts.Add(attempt);
        delivery.Attempts = attempt.Number;
        if (attempt.Error is null)
        {
            (delivery.Status, delivery.NextAttemptAt) = (WebhookStatus.Delivered, null);
            return;
        }
        if (delivery.Attempts >= subscription.MaxAttempts)
        {
            (delivery.Status, delivery.NextAttemptAt) = (WebhookStatus.Failed, null);
            logger.LogWarning("Webhook {Subscription} gave up on event {Event} after {Attempts} attempts: {Error}",
                subscription.Id, delivery.EventId, delivery.Attempts, attempt.Error);
            // The admin alert; a failure notice is never itself delivered to the subscription that failed.
            if (delivery.Event != EventTypes.WebhookFailed)
                await events.RaiseAsync(EventTypes.WebhookFailed, null,
                    new { webhook = subscription.Id, event_id = delivery.EventId, @event = delivery.Event, attempts = delivery.Attempts, error = attempt.Error }, success: false);
            return;
        }
        var delay = subscription.InitialDelaySeconds * Math.Pow(subscription.BackoffMultiplier, delivery.Attempts - 1);
        delivery.NextAttemptAt = time.GetUtcNow() + TimeSpan.FromSeconds(Math.Min(delay, TimeSpan.FromDays(1).TotalSeconds));
    }
}
