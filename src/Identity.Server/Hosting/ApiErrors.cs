using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace Identity.Server.Hosting;

/// <summary>
/// The seed's error envelope, {"error":{code,message,details,request_id}}, for every /api/v1 answer that fails,
/// including the ones ASP.NET Core produces itself (401 from the bearer handler, 404, 405, unhandled exceptions).
/// Other paths get a short plain answer; no path ever shows a stack trace.
/// </summary>
public static class ApiErrors
{
    public static readonly PathString ApiPrefix = "/api/v1";

    /// <summary>The JSON APIs: /api/v1 and the policy decision endpoints (/v1/authorize, AuthZEN's /access/v1).</summary>
    public static bool IsApi(PathString path) =>
        path.StartsWithSegments(ApiPrefix) || path.StartsWithSegments("/v1/authorize") || path.StartsWithSegments("/access/v1");

    /// <summary>SCIM (/scim/v2) answers its errors in RFC 7644's shape rather than the seed's envelope.</summary>
    public static bool IsScim(PathString path) => path.StartsWithSegments(Scim.ScimApi.Prefix);

    /// <summary>No resource API takes more than this; a larger body is refused before it is read.</summary>
    public const long MaxBodyBytes = 64 * 1024;

    public static IResult Result(HttpContext http, int status, string code, string message, object? details = null) =>
        Results.Json(Envelope(http, code, message, details), statusCode: status);

    /// <summary>Missing, or out of the caller's reach: the same answer, so neither can be told from the other.</summary>
    public static IResult NotFound(HttpContext http) => Result(http, StatusCodes.Status404NotFound, "NOT_FOUND", "Resource not found.");

    public const string ConflictMessage = "Another request changed this at the same time, and this request's change was not saved. Read it again and retry.";

    /// <summary>Lost a race with another change of the same thing (see <see cref="IsConflict(Exception)"/>): 409, to retry.</summary>
    public static IResult Conflict(HttpContext http) => Result(http, StatusCodes.Status409Conflict, "CONFLICT", ConflictMessage);

    /// <summary>
    /// Another request changed, removed or made the same thing between this one's read and its write: an optimistic
    /// concurrency conflict (EF Core's, or OpenIddict's over it) or a unique key taken meanwhile (two requests adding
    /// the same role to a user at once). The database refused the save whole, so wherever in the server it happens it
    /// is a 409 to read again and retry, not a server error.
    /// </summary>
    public static bool IsConflict(Exception exception) => exception switch
    {
        DbUpdateConcurrencyException or OpenIddictExceptions.ConcurrencyException => true,
        DbUpdateException { InnerException: Microsoft.Data.Sqlite.SqliteException { SqliteExtendedErrorCode: 2067 or 1555 } } => true,
        DbUpdateException { InnerException: Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.UniqueViolation } } => true,
        DbUpdateException { InnerException: Microsoft.Data.SqlClient.SqlException { Number: 2601 or 2627 } } => true,
        _ => false,
    };

    /// <summary>ASP.NET Core Identity's stores report EF Core's concurrency conflict as this error instead of throwing it.</summary>
    public static bool IsConflict(IdentityResult result) => result.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.ConcurrencyFailure));

    static object Envelope(HttpContext http, string code, string message, object? details) =>
        new { error = new { code, message, details, request_id = http.TraceIdentifier } };

    // InvalidDataException: a form the server cannot read (a NUL, more than 1,024 fields, a 4 MB value), which
    // surfaces wherever the form is first read, inside OpenIddict for /connect/*. It is the client's fault.
    static int StatusOf(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        var conflict when IsConflict(conflict) => StatusCodes.Status409Conflict,
        InvalidDataException => StatusCodes.Status400BadRequest,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>
    /// A body the endpoint cannot bind (a value of the wrong type, a null in a list) is thrown as a bad request, as in
    /// development, rather than answered as a bare 400, so that the handler below can name the field at fault.
    /// </summary>
    public static WebApplicationBuilder AddApiErrors(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        return builder;
    }

    /// <summary>
    /// What a client is told about its malformed request: for JSON that does not fit, the field at fault, by its JSON
    /// name ("grant_types", "retry_policy.max_attempts"), which System.Text.Json tracks as it reads. The exception's own
    /// message names the server's types, so it is not passed on.
    /// </summary>
    static (string Message, object? Details) Malformed(Exception? exception) =>
        exception is BadHttpRequestException { InnerException: System.Text.Json.JsonException json }
            ? FieldOf(json.Path ?? "") is { Length: > 0 and <= 100 } field
                ? ($"'{field}' has the wrong type or shape.", new { field })
                : ("The body is not a JSON object of the expected shape.", null)
            : ("The request is malformed.", null);

    static string FieldOf(string path) =>
        System.Text.RegularExpressions.Regex.Replace(path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$'), @"\[[^\]]*\]", "");

    public static WebApplication UseApiErrors(this WebApplication app)
    {
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = StatusOf,
            // A client's malformed request is its error, not the server's: logging each with a stack trace at error
            // level would let anyone flood the log and bury real failures.
            SuppressDiagnosticsCallback = context => StatusOf(context.Exception) < 500,
            ExceptionHandler = async http =>
            {
                var status = http.Response.StatusCode;
                var (code, (message, details)) = status switch
                {
                    StatusCodes.Status409Conflict => ("CONFLICT", (ConflictMessage, null)),
                    < 500 => ("INVALID_REQUEST", Malformed(http.Features.Get<IExceptionHandlerFeature>()?.Error)),
                    _ => ("INTERNAL_ERROR", ("An unexpected error occurred.", (object?)null)),
                };
                if (IsApi(http.Request.Path))
                    await http.Response.WriteAsJsonAsync(Envelope(http, code, message, details));
                else if (IsScim(http.Request.Path))
                    await http.Response.WriteAsJsonAsync(Scim.ScimErrors.Body(status, status is < 500 and not StatusCodes.Status409Conflict ? Scim.ScimErrors.InvalidSyntax : null,
                        $"{message} (request {http.TraceIdentifier})"), (System.Text.Json.JsonSerializerOptions?)null, Scim.ScimErrors.MediaType);
                else if (http.Request.Path.StartsWithSegments("/connect"))
                    await http.Response.WriteAsJsonAsync(new Dictionary<string, string>
                    {
                        ["error"] = status < 500 ? "invalid_request" : "server_error",
                        ["error_description"] = $"{message} (request {http.TraceIdentifier})",
                    });
                else
                    await http.Response.WriteAsync($"{message} (request {http.TraceIdentifier})");
            },
        });

        app.UseStatusCodePages(async (StatusCodeContext context) =>
        {
            var http = context.HttpContext;
            var status = http.Response.StatusCode;
            if (IsScim(http.Request.Path))
            {
                // RFC 7644 §3.12: the same answers in SCIM's error shape.
                var detail = status switch
                {
                    401 => "Missing or invalid bearer token.",
                    403 => $"The token must be a client's own token with the scope '{Scim.ScimApi.Scope}'.",
                    404 => "Resource not found.",
                    405 => "Method not allowed.",
                    _ => "The request could not be served.",
                };
                await http.Response.WriteAsJsonAsync(Scim.ScimErrors.Body(status, null, detail), (System.Text.Json.JsonSerializerOptions?)null,
                    Scim.ScimErrors.MediaType);
                return;
            }
            if (!IsApi(http.Request.Path))
                return;

            var (code, message) = status switch
            {
                401 => ("UNAUTHORIZED", "Missing or invalid authentication."),
                403 => ("FORBIDDEN", "Insufficient permissions."),
                404 => ("NOT_FOUND", "Resource not found."),
                429 => ("RATE_LIMITED", "Too many requests."),
                >= 500 => ("INTERNAL_ERROR", "An unexpected error occurred."),
                _ => ("INVALID_REQUEST", "Malformed request body or parameters."),
            };
            // The bearer handler says why a token was refused (expired, wrong audience, revoked): pass that on.
            var properties = (await http.AuthenticateAsync(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)).Properties;
            var reason = properties?.GetString(OpenIddictValidationAspNetCoreConstants.Properties.ErrorDescription);
            await http.Response.WriteAsJsonAsync(Envelope(http, code, message, reason is null ? null : new { reason }));
        });

        app.Use(async (http, next) =>
        {
            if (IsScim(http.Request.Path))
            {
                if (http.Request.ContentLength > Scim.ScimErrors.MaxBodyBytes)
                {
                    await Scim.ScimErrors.Result(StatusCodes.Status413PayloadTooLarge, null, $"The body must be at most {Scim.ScimErrors.MaxBodyBytes} bytes.")
                        .ExecuteAsync(http);
                    return;
                }
                if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } scimLimit)
                    scimLimit.MaxRequestBodySize = Scim.ScimErrors.MaxBodyBytes;
            }
            else if (IsApi(http.Request.Path))
            {
                if (http.Request.ContentLength > MaxBodyBytes)
                {
                    await Result(http, StatusCodes.Status413PayloadTooLarge, "INVALID_REQUEST", $"The body must be at most {MaxBodyBytes} bytes.").ExecuteAsync(http);
                    return;
                }
                // A body without a length (chunked) is cut off at the same size by the server.
                if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
                    limit.MaxRequestBodySize = MaxBodyBytes;
            }
            await next(http);
        });
        return app;
    }
}
