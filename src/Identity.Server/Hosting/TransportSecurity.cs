using System.Net;

namespace Identity.Server.Hosting;

/// <summary>
/// Tokens and passwords travel only over HTTPS, except in Development and for requests over loopback (a local
/// client, or a TLS-terminating proxy on the same host). Liveness and readiness stay reachable for probes.
/// </summary>
public static class TransportSecurity
{
    public static WebApplication UseTransportSecurity(this WebApplication app)
    {
        if (app.Environment.IsDevelopment())
            return app;

        // Browsers are told to use HTTPS only (HSTS, on HTTPS answers), and every cookie (session, antiforgery, the
        // external sign-in's) is Secure even when the request reached us as plain HTTP from a TLS proxy on this host.
        app.UseHsts();
        app.UseCookiePolicy(new CookiePolicyOptions { Secure = CookieSecurePolicy.Always });

        app.Use(async (http, next) =>
        {
            var remote = http.Connection.RemoteIpAddress;
            if (http.Request.IsHttps || remote is null || IPAddress.IsLoopback(remote) || http.Request.Path.StartsWithSegments("/health"))
            {
                await next(http);
                return;
            }
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            await http.Response.WriteAsync("HTTPS is required.");
        });
        return app;
    }
}
