using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// A real web server of a test's own, which the identity server calls out to (a provider, a webhook receiver, a
/// client's key set or back channel): Kestrel on 127.0.0.1 at a free port, without logging.
/// </summary>
public static class LoopbackServer
{
    /// <summary>Starts one with the routes <paramref name="map"/> adds; its base address, without a trailing slash.</summary>
    public static (WebApplication App, string Url) Start(Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        map(app);
        app.StartAsync().GetAwaiter().GetResult();
        return (app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }
}
