using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// A client's own web server on 127.0.0.1 (Kestrel) publishing documents at paths a test sets, as a client publishes
/// its key set at its jwks_uri; it counts the requests for each path, so a test can see when the server fetched.
/// </summary>
public sealed class KeySetServer : IAsyncDisposable
{
    readonly WebApplication app;
    readonly ConcurrentDictionary<string, (int Status, string Body)> documents = new();
    readonly ConcurrentDictionary<string, int> requests = new();
    readonly string root;

    public KeySetServer()
    {
        (app, root) = LoopbackServer.Start(web => web.Run(async http =>
        {
            var path = http.Request.Path.Value!;
            requests.AddOrUpdate(path, 1, (_, n) => n + 1);
            var (status, body) = documents.TryGetValue(path, out var document) ? document : (404, "");
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(body);
        }));
    }

    /// <summary>Publishes <paramref name="body"/> at a new path of its own, or replaces what <paramref name="url"/> serves.</summary>
    public string Publish(string body, int status = 200, string? url = null)
    {
        var path = url is null ? "/" + Guid.NewGuid().ToString("N") + "/jwks.json" : new Uri(url).AbsolutePath;
        documents[path] = (status, body);
        return root + path;
    }

    public int RequestsTo(string url) => requests.GetValueOrDefault(new Uri(url).AbsolutePath);

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
