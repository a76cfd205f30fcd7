using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Routing.Template;

namespace Identity.Server.Scim;

/// <summary>
/// SCIM Bulk (RFC 7644 §3.7): many changes to users and groups in one request, each run as if it had come alone (the
/// same endpoint, checks and errors, in a scope of its own, for the same directory), in order. A POST's bulkId names
/// the resource it makes, so later operations refer to it as "bulkId:..." (a new user added to a new group in one
/// go); a reference to an operation that failed or has not run fails. failOnErrors stops after that many errors.
/// Operations are not one transaction: each one that succeeded stays, as the RFC has it.
/// </summary>
public static class ScimBulk
{
    public const string Request = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    public const string Response = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
    public const int MaxOperations = 1000;

    const string Reference = "bulkId:";

    /// <summary>The category of the bulk endpoint's log.</summary>
    sealed class ScimBulkLog;

    public static void Map(RouteGroupBuilder scim) =>
        scim.MapPost("/Bulk", BulkAsync).WithSummary("Many changes to users and groups in one request (RFC 7644 §3.7)");

    static async Task<IResult> BulkAsync(HttpContext http, EndpointDataSource endpoints, IServiceScopeFactory scopes)
    {
        var body = await ScimJson.ReadObjectAsync(http.Request);
        if (body.Get("Operations") is not JsonArray operations)
            throw new ScimException(400, ScimErrors.InvalidSyntax, "A bulk request carries its operations in Operations, an array.");
        if (operations.Count > MaxOperations)
            throw new ScimException(413, null, $"A bulk request may carry at most {MaxOperations} operations.");
        var failOnErrors = body.Get("failOnErrors") switch
        {
            null => int.MaxValue,
            JsonValue value when value.TryGetValue<int>(out var limit) && limit > 0 => limit,
            _ => throw new ScimException(400, ScimErrors.InvalidValue, "failOnErrors must be a positive integer."),
        };

        var made = new Dictionary<string, string>(StringComparer.Ordinal);
        var results = new JsonArray();
        var errors = 0;
        foreach (var node in operations)
        {
            if (errors >= failOnErrors)
                break;
            var result = await RunAsync(http, endpoints, scopes, node as JsonObject, made);
            if (int.Parse(result["status"]!.GetValue<string>()) >= 400)
                errors++;
            results.Add(result);
        }
        return ScimJson.Resource(new JsonObject { ["schemas"] = new JsonArray(Response), ["Operations"] = results });
    }

    /// <summary>One operation, as a request of its own; its entry of the bulk response.</summary>
    static async Task<JsonObject> RunAsync(HttpContext http, EndpointDataSource endpoints, IServiceScopeFactory scopes, JsonObject? operation,
        Dictionary<string, string> made)
    {
        var entry = new JsonObject();
        JsonObject Failed(int status, string? scimType, string detail)
        {
            entry["status"] = status.ToString();
            entry["response"] = ScimErrors.Body(status, scimType, detail);
            return entry;
        }
        string? method, bulkId, path, version;
        try
        {
            method = ScimJson.String(operation?.Get("method"), "method")?.ToUpperInvariant();
            bulkId = ScimJson.String(operation?.Get("bulkId"), "bulkId");
            path = ScimJson.String(operation?.Get("path"), "path");
            version = ScimJson.String(operation?.Get("version"), "version");
        }
        catch (ScimException malformed)
        {
            return Failed(malformed.Status, malformed.ScimType, malformed.Message);
        }
        entry["method"] = method;
        entry["bulkId"] = bulkId;

        if (method is not ("POST" or "PUT" or "PATCH" or "DELETE"))
            return Failed(400, ScimErrors.InvalidSyntax, "Each operation's method is POST, PUT, PATCH or DELETE.");
        if (method == "POST" && string.IsNullOrEmpty(bulkId))
            return Failed(400, ScimErrors.InvalidSyntax, "A POST operation needs a bulkId.");
        if (path is null || !path.StartsWith('/') || path.StartsWith("/Bulk", StringComparison.OrdinalIgnoreCase))
            return Failed(400, ScimErrors.InvalidPath, "Each operation's path is a resource's, such as /Users or /Groups/{id}.");
        JsonNode? data;
        try
        {
            path = Resolve(path, made);
            data = operation!.Get("data") is { } given ? Resolved(given.DeepClone(), made) : null;
        }
        catch (ScimException unresolved)
        {
            return Failed(unresolved.Status, unresolved.ScimType, unresolved.Message);
        }
        if (data is null && method != "DELETE")
            return Failed(400, ScimErrors.InvalidSyntax, $"A {method} operation carries the resource, or its PatchOp, in data.");

        var target = ScimApi.Prefix.Add(new PathString(path));
        var (endpoint, values) = Find(endpoints, method, target);
        if (endpoint is null)
            return Failed(404, null, $"There is no {method} {path} here.");

        await using var scope = scopes.CreateAsyncScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider, User = http.User };
        context.Request.Method = method;
        context.Request.Scheme = http.Request.Scheme;
        context.Request.Host = http.Request.Host;
        context.Request.PathBase = http.Request.PathBase;
        context.Request.Path = target;
        context.Request.RouteValues = values;
        context.Request.ContentType = ScimErrors.MediaType;
        context.Request.Body = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(data?.ToJsonString() ?? ""));
        if (version is not null)
            context.Request.Headers.IfMatch = version;
        var answer = new MemoryStream();
        context.Response.Body = answer;
        context.SetEndpoint(endpoint);
        try
        {
            await endpoint.RequestDelegate!(context);
        }
        catch (Exception failure) when (failure is not OperationCanceledException)
        {
            // What succeeded before stays; the caller learns which operation failed instead of losing the whole answer.
            http.RequestServices.GetRequiredService<ILogger<ScimBulkLog>>().LogError(failure, "SCIM bulk operation {Method} {Path} failed.", method, path);
            return Failed(500, null, "The operation failed on the server.");
        }

        var status = context.Response.StatusCode;
        entry["status"] = status.ToString();
        if (context.Response.Headers.Location.ToString() is { Length: > 0 } location)
        {
            entry["location"] = location;
            if (method == "POST" && status == StatusCodes.Status201Created)
                made[bulkId!] = location[(location.LastIndexOf('/') + 1)..];
        }
        if (context.Response.Headers.ETag.ToString() is { Length: > 0 } etag)
            entry["version"] = etag;
        if (status >= 400 && answer.Length > 0)
            entry["response"] = JsonNode.Parse(answer.ToArray());
        return entry;
    }

    /// <summary>The SCIM endpoint for <paramref name="method"/> at <paramref name="path"/>, with its route values.</summary>
    static (RouteEndpoint? Endpoint, RouteValueDictionary Values) Find(EndpointDataSource endpoints, string method, PathString path)
    {
        foreach (var endpoint in endpoints.Endpoints.OfType<RouteEndpoint>())
        {
            if (endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods.Contains(method) != true ||
                !endpoint.RoutePattern.RawText!.StartsWith(ScimApi.Prefix, StringComparison.OrdinalIgnoreCase))
                continue;
            var values = new RouteValueDictionary();
            if (new TemplateMatcher(TemplateParser.Parse(endpoint.RoutePattern.RawText), new RouteValueDictionary()).TryMatch(path, values))
                return (endpoint, values);
        }
        return (null, new RouteValueDictionary());
    }

    static string Resolve(string value, Dictionary<string, string> made)
    {
        var at = value.IndexOf(Reference, StringComparison.Ordinal);
        if (at < 0)
            return value;
        var name = value[(at + Reference.Length)..].Split('/')[0];
        return made.TryGetValue(name, out var id)
            ? value[..at] + id + value[(at + Reference.Length + name.Length)..]
            : throw new ScimException(409, ScimErrors.InvalidValue, $"'{Reference}{name}' names no resource made earlier in this request.");
    }

    /// <summary><paramref name="node"/> with every "bulkId:..." string replaced by the id it stands for.</summary>
    static JsonNode Resolved(JsonNode node, Dictionary<string, string> made)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, value) in obj.ToList())
                    if (value is not null)
                        obj[name] = Resolved(value.DeepClone(), made);
                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                    if (array[i] is { } item)
                        array[i] = Resolved(item.DeepClone(), made);
                return array;
            case JsonValue value when value.TryGetValue<string>(out var text) && text.StartsWith(Reference, StringComparison.Ordinal):
                return JsonValue.Create(Resolve(text, made));
            default:
                return node;
        }
    }
}
