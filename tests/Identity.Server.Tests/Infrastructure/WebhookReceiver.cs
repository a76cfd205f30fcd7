using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// A real webhook receiver on 127.0.0.1 (Kestrel): checks each signature with the seed's verifyWebhook algorithm,
/// leaves the first <see cref="HangFirst"/> requests unanswered (kept with status 0), answers 500 to the first
/// <see cref="FailFirst"/> requests, then 200.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public sealed record Received(string Body, string? Signature, string? Id, string? Timestamp, bool SignatureValid, int AnsweredWith);

    readonly WebApplication app;
    public ConcurrentQueue<Received> Requests { get; } = new();
    public string Secret { get; }
    public int FailFirst { get; set; }
    public int HangFirst { get; set; }
    public string Url { get; }

    public WebhookReceiver(string secret)
    {
        Secret = secret;
        // A path of its own: a subscription left by an earlier test whose receiver had this port must not count here.
        var path = "/hook/" + Guid.NewGuid().ToString("N");
        (app, var root) = LoopbackServer.Start(web => web.MapPost(path, async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            var signature = http.Request.Headers["X-Webhook-Signature"].ToString();
            // A hanging receiver: never answers the first requests; the server has to give up on them.
            if (Requests.Count < HangFirst)
            {
                Requests.Enqueue(new Received(body, signature, http.Request.Headers["X-Webhook-Id"], http.Request.Headers["X-Webhook-Timestamp"],
                    Verify(body, signature), 0));
                await Task.Delay(TimeSpan.FromMinutes(1), http.RequestAborted).ContinueWith(_ => { });
                return Results.StatusCode(504);
            }
            var status = Requests.Count < FailFirst ? 500 : 200;
            Requests.Enqueue(new Received(body, signature, http.Request.Headers["X-Webhook-Id"], http.Request.Headers["X-Webhook-Timestamp"],
                Verify(body, signature), status));
            return Results.StatusCode(status);
        }));
        Url = root + path;
    }

    // The seed's verifyWebhook(payload, signature, secret), in C#.
    bool Verify(string payload, string signature) =>
        signature == "sha256=" + Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), Encoding.UTF8.GetBytes(payload))).ToLowerInvariant();

    public async Task<IReadOnlyList<Received>> WaitForAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Requests.Count < count && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        return [.. Requests];
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
