using System.Text.RegularExpressions;

namespace Identity.Server.Hosting;

/// <summary>
/// X-Request-Id on every response, equal to the request_id of any error in it and to the id in the logs. A
/// caller's own X-Request-Id is kept when it is a short plain token, so a request can be followed across services.
/// </summary>
public static partial class RequestIds
{
    [GeneratedRegex("^[A-Za-z0-9._:-]{1,64}$")]
    private static partial Regex Safe();

    public static WebApplication UseRequestIds(this WebApplication app)
    {
        app.Use((http, next) =>
        {
            if (http.Request.Headers["X-Request-Id"] is [{ } incoming] && Safe().IsMatch(incoming))
                http.TraceIdentifier = incoming;
            // Set as the response starts: error handlers clear the headers before they write.
            http.Response.OnStarting(() =>
            {
                http.Response.Headers["X-Request-Id"] = http.TraceIdentifier;
                return Task.CompletedTask;
            });
            return next(http);
        });
        return app;
    }
}
