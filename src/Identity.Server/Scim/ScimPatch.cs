using System.Text.Json.Nodes;

namespace Identity.Server.Scim;

/// <summary>
/// PATCH bodies (RFC 7644 §3.5.2) as directories really send them: op in any letter case ("Replace" from Microsoft
/// Entra ID), a path or an object of attributes as the value (Okta), and value paths such as
/// <c>emails[type eq "work"].value</c> or <c>members[value eq "id"]</c>.
/// </summary>
public static class ScimPatch
{
    public const string Add = "add";
    public const string Replace = "replace";
    public const string Remove = "remove";

    /// <summary>One operation; <see cref="Path"/> is null when the value carries the attributes.</summary>
    public sealed record Operation(string Kind, Path? Path, JsonNode? Value);

    /// <summary>
    /// A path split at its value filter: <see cref="Attribute"/> is the normalized attribute with the filter taken
    /// out (emails.value for emails[type eq "work"].value), <see cref="Filter"/> the filter, if any.
    /// </summary>
    public sealed record Path(string Attribute, ScimFilter? Filter);

    public static IReadOnlyList<Operation> Operations(JsonObject body)
    {
        if (body.Get("Operations") is not JsonArray operations || operations.Count == 0)
            throw new ScimException(400, ScimErrors.InvalidSyntax, "A PATCH body needs a non-empty Operations array.");
        return operations.Select(node =>
        {
            if (node is not JsonObject operation)
                throw new ScimException(400, ScimErrors.InvalidSyntax, "Each operation must be an object.");
            var kind = ScimJson.String(operation.Get("op"), "op")?.ToLowerInvariant();
            if (kind is not (Add or Replace or Remove))
                throw new ScimException(400, ScimErrors.InvalidSyntax, "op must be add, replace or remove.");
            var path = ScimJson.String(operation.Get("path"), "path");
            return new Operation(kind, string.IsNullOrWhiteSpace(path) ? null : Parse(path), operation.Get("value"));
        }).ToList();
    }

    static Path Parse(string path)
    {
        path = path.Trim();
        var open = path.IndexOf('[');
        if (open < 0)
            return path.Contains(']') ? throw InvalidPath(path) : new Path(ScimPaths.Normalize(path), null);
        var close = path.LastIndexOf(']');
        if (close < open || open == 0)
            throw InvalidPath(path);
        ScimFilter filter;
        try
        {
            filter = ScimFilter.Parse(path[(open + 1)..close]);
        }
        catch (ScimException)
        {
            throw InvalidPath(path);
        }
        return new Path(ScimPaths.Normalize(path[..open] + path[(close + 1)..]), filter);
    }

    static ScimException InvalidPath(string path) => new(400, ScimErrors.InvalidPath, $"'{path}' is not a valid attribute path.");
}
