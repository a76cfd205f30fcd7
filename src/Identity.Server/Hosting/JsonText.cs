using System.Text.Json;

namespace Identity.Server.Hosting;

/// <summary>
/// JSON lets a string hold a lone UTF-16 surrogate as an escape ("\ud800"), which JsonDocument accepts and
/// JsonElement.GetString then refuses with an exception, wherever the value happens to be read. The bodies the APIs
/// read by hand are checked once, whole, where they are parsed, so such text is a 400 like any other malformed JSON.
/// </summary>
public static class JsonText
{
    /// <summary>Every string and property name is valid UTF-16. Recursion is bounded by JsonDocument's depth limit (64).</summary>
    public static bool IsWellFormed(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => Readable(() => element.GetString()),
        JsonValueKind.Array => element.EnumerateArray().All(IsWellFormed),
        JsonValueKind.Object => element.EnumerateObject().All(p => Readable(() => p.Name) && IsWellFormed(p.Value)),
        _ => true,
    };

    static bool Readable(Func<string?> read)
    {
        try
        {
            read();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
