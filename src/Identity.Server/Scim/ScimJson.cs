using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Scim;

public static class ScimSchemas
{
    public const string User = "urn:ietf:params:scim:schemas:core:2.0:User";
    public const string Group = "urn:ietf:params:scim:schemas:core:2.0:Group";
    public const string EnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    public const string ListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    public const string PatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    public const string Error = "urn:ietf:params:scim:api:messages:2.0:Error";
    public const string ServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
    public const string ResourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
    public const string Schema = "urn:ietf:params:scim:schemas:core:2.0:Schema";
}

/// <summary>The scimType values of RFC 7644 §3.12 this server answers with.</summary>
public static class ScimErrors
{
    public const string InvalidFilter = "invalidFilter";
    public const string InvalidSyntax = "invalidSyntax";
    public const string InvalidValue = "invalidValue";
    public const string InvalidPath = "invalidPath";
    public const string NoTarget = "noTarget";
    public const string Uniqueness = "uniqueness";
    public const string Mutability = "mutability";
    public const string TooMany = "tooMany";

    public const string MediaType = "application/scim+json";

    /// <summary>SCIM bodies may list many group members; this is still far below what a server would struggle with.</summary>
    public const long MaxBodyBytes = 1024 * 1024;

    public static IResult Result(int status, string? scimType, string detail) => Results.Json(Body(status, scimType, detail),
        statusCode: status, contentType: MediaType);

    public static JsonObject Body(int status, string? scimType, string detail)
    {
        var body = new JsonObject
        {
            ["schemas"] = new JsonArray(ScimSchemas.Error),
            ["status"] = status.ToString(),
            ["detail"] = detail,
        };
        if (scimType is not null)
            body["scimType"] = scimType;
        return body;
    }

    public static IResult NotFound(string id) => Result(404, null, $"There is no resource '{id}'.");
}

/// <summary>A request the SCIM endpoints refuse, with its status and scimType; turned into an RFC 7644 error.</summary>
public sealed class ScimException(int status, string? scimType, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string? ScimType { get; } = scimType;
    public IResult ToResult() => ScimErrors.Result(Status, ScimType, Message);
}

/// <summary>Reading SCIM JSON, whose attribute names are case-insensitive (RFC 7643 §2.1), and writing it.</summary>
public static class ScimJson
{
    public static async Task<JsonObject> ReadObjectAsync(HttpRequest request)
    {
        try
        {
            return await JsonNode.ParseAsync(request.Body) as JsonObject
                ?? throw new ScimException(400, ScimErrors.InvalidSyntax, "The body must be a JSON object.");
        }
        catch (JsonException)
        {
            throw new ScimException(400, ScimErrors.InvalidSyntax, "The body is not valid JSON.");
        }
    }

    /// <summary>The member named <paramref name="name"/> in any letter case, or null.</summary>
    public static JsonNode? Get(this JsonObject node, string name)
    {
        foreach (var (key, value) in node)
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
                return value;
        return null;
    }

    public static bool Has(this JsonObject node, string name) => node.Any(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase));

    public static string? String(JsonNode? node, string attribute) => node switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        _ => throw new ScimException(400, ScimErrors.InvalidValue, $"'{attribute}' must be a string."),
    };

    /// <summary>A boolean, also as the strings "True"/"False" that Microsoft Entra ID sends in PATCH operations.</summary>
    public static bool Boolean(JsonNode? node, string attribute) => node switch
    {
        JsonValue value when value.TryGetValue<bool>(out var flag) => flag,
        JsonValue value when value.TryGetValue<string>(out var text) && bool.TryParse(text, out var parsed) => parsed,
        _ => throw new ScimException(400, ScimErrors.InvalidValue, $"'{attribute}' must be true or false."),
    };

    /// <summary>
    /// A SCIM body; a single resource also gives its version in the ETag header (RFC 7644 §3.14), also when the
    /// attributes asked for leave meta out (<paramref name="version"/>, read before they were cut).
    /// </summary>
    public static IResult Resource(JsonObject resource, int status = 200, string? version = null)
    {
        var json = Results.Json(resource, statusCode: status, contentType: ScimErrors.MediaType);
        return (version ?? VersionOf(resource)) is { } tag ? new WithETag(json, tag) : json;
    }

    /// <summary>A single resource as a read answers it: 304 if the client has this version (If-None-Match), else cut to the attributes asked for.</summary>
    public static IResult Read(HttpRequest request, JsonObject resource, string? attributes, string? excludedAttributes)
    {
        var version = VersionOf(resource); // before Project, which cuts the resource in place
        return NotModified(request, resource) ?? Resource(Project(resource, attributes, excludedAttributes), version: version);
    }

    /// <summary>
    /// Gives <paramref name="resource"/> its meta.version (RFC 7644 §3.14): a weak entity tag of the resource as
    /// rendered, less its meta, so it changes with anything a client can read of it, a user's groups and a group's
    /// members included, and with nothing else.
    /// </summary>
    public static JsonObject Versioned(JsonObject resource)
    {
        var content = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(content))
        {
            writer.WriteStartObject();
            foreach (var (name, value) in resource)
            {
                if (name == "meta")
                    continue;
                writer.WritePropertyName(name);
                if (value is null)
                    writer.WriteNullValue();
                else
                    value.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        var version = $"W/\"{Base64Url.EncodeToString(SHA256.HashData(content.WrittenSpan)[..16])}\"";
        if (resource["meta"] is JsonObject meta)
            meta["version"] = version;
        return resource;
    }

    static string? VersionOf(JsonObject resource) =>
        resource["meta"] is JsonObject meta && meta["version"] is JsonValue version && version.TryGetValue<string>(out var text) ? text : null;

    /// <summary>
    /// If-None-Match on a read: the client's copy is <paramref name="current"/>, so the answer is 304 Not Modified
    /// (with the version), else null.
    /// </summary>
    static IResult? NotModified(HttpRequest request, JsonObject current) =>
        VersionOf(current) is { } version && AnyMatches(request.Headers.IfNoneMatch, version)
            ? new WithETag(Results.StatusCode(StatusCodes.Status304NotModified), version)
            : null;

    /// <summary>
    /// If-Match on a change: unless the resource is still at a version the client names (or it names "*"), nothing is
    /// changed and the answer is 412 Precondition Failed, so a directory that read a resource cannot overwrite a change
    /// made since. Without If-Match the change is made, as RFC 7644 allows. Null when the change may go ahead.
    /// </summary>
    public static async Task<IResult?> PreconditionFailedAsync(HttpRequest request, Func<Task<JsonObject>> current)
    {
        if (request.Headers.IfMatch.Count == 0 || VersionOf(await current()) is not { } version || AnyMatches(request.Headers.IfMatch, version))
            return null;
        return ScimErrors.Result(StatusCodes.Status412PreconditionFailed, null, "The resource has changed since that version: read it again.");
    }

    // Weak comparison (RFC 9110 §8.8.3.2): W/ is ignored on both sides.
    static bool AnyMatches(Microsoft.Extensions.Primitives.StringValues header, string version)
    {
        static string Opaque(string tag) => tag.StartsWith("W/", StringComparison.Ordinal) ? tag[2..] : tag;
        return header.SelectMany(h => (h ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Any(tag => tag == "*" || Opaque(tag) == Opaque(version));
    }

    sealed class WithETag(IResult inner, string version) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            http.Response.Headers.ETag = version;
            return inner.ExecuteAsync(http);
        }
    }

    public static JsonObject ListResponse(int total, int startIndex, IEnumerable<JsonObject> resources)
    {
        var items = new JsonArray([.. resources]);
        return new JsonObject
        {
            ["schemas"] = new JsonArray(ScimSchemas.ListResponse),
            ["totalResults"] = total,
            ["startIndex"] = startIndex,
            ["itemsPerPage"] = items.Count,
            ["Resources"] = items,
        };
    }

    public static JsonObject Meta(string resourceType, DateTimeOffset created, DateTimeOffset? modified, string location)
    {
        var meta = new JsonObject { ["resourceType"] = resourceType, ["created"] = created.UtcDateTime.ToString("O"), ["location"] = location };
        if (modified is { } lastModified)
            meta["lastModified"] = lastModified.UtcDateTime.ToString("O");
        return meta;
    }

    /// <summary>
    /// The attributes and excludedAttributes parameters (RFC 7644 §3.4.2.5), at the level of top-level attributes:
    /// naming a sub-attribute (name.givenName) keeps or drops its whole parent. id and schemas are always returned.
    /// </summary>
    public static JsonObject Project(JsonObject resource, string? attributes, string? excludedAttributes)
    {
        static HashSet<string> TopLevel(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(a => ScimPaths.Normalize(a).Split('.')[0]).ToHashSet(StringComparer.OrdinalIgnoreCase);

        string[] always = ["id", "schemas"];
        var keep = string.IsNullOrWhiteSpace(attributes) ? null : TopLevel(attributes);
        var drop = string.IsNullOrWhiteSpace(excludedAttributes) ? [] : TopLevel(excludedAttributes);
        foreach (var name in resource.Select(p => p.Key).ToList())
            if (!always.Contains(name) && ((keep is not null && !keep.Contains(name)) || drop.Contains(name)))
                resource.Remove(name);
        return resource;
    }

    /// <summary>
    /// A list answer (RFC 7644 §3.4.2): the resources of <paramref name="query"/> that pass the filter, one page of
    /// them in the order sortBy and sortOrder ask (else <paramref name="order"/>, creation order), rendered and cut to
    /// the requested attributes.
    /// </summary>
    public static async Task<IResult> ListAsync<T>(HttpRequest request, IQueryable<T> query, ScimAttributes<T> filters,
        Func<IQueryable<T>, IOrderedQueryable<T>> order, Func<List<T>, Task<List<JsonObject>>> render)
    {
        string? Parameter(string name) => request.Query[name].FirstOrDefault();
        var (start, size) = Page(Parameter("startIndex"), Parameter("count"), ScimApi.MaxResults);
        if (Parameter("filter") is { } filter && !string.IsNullOrWhiteSpace(filter))
            query = query.Where(filters.Predicate(ScimFilter.Parse(filter)));
        var total = await query.CountAsync();
        var sorted = Parameter("sortBy") is { } sortBy && !string.IsNullOrWhiteSpace(sortBy)
            ? filters.Sort(query, ScimPaths.Normalize(sortBy.Trim()), Descending(Parameter("sortOrder")))
            : order(query);
        var page = size == 0 ? [] : await sorted.Skip(start - 1).Take(size).ToListAsync();
        var resources = await render(page);
        return Resource(ListResponse(total, start, resources.Select(r => Project(r, Parameter("attributes"), Parameter("excludedAttributes")))));
    }

    static bool Descending(string? sortOrder) => sortOrder?.Trim().ToLowerInvariant() switch
    {
        null or "" or "ascending" => false,
        "descending" => true,
        _ => throw new ScimException(400, ScimErrors.InvalidValue, "sortOrder must be ascending or descending."),
    };

    /// <summary>startIndex (1-based, at least 1) and count (0 to <paramref name="max"/>; 100 by default), as RFC 7644 §3.4.2.4 reads them.</summary>
    static (int StartIndex, int Count) Page(string? startIndex, string? count, int max)
    {
        static int? Read(string? text, string name) => text is null ? null
            : int.TryParse(text, out var value) ? value
            : throw new ScimException(400, ScimErrors.InvalidValue, $"{name} must be an integer.");
        return (Math.Max(1, Read(startIndex, "startIndex") ?? 1), Math.Clamp(Read(count, "count") ?? 100, 0, max));
    }
}
