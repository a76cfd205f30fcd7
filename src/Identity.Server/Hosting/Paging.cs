using System.Globalization;

namespace Identity.Server.Hosting;

/// <summary>The seed's list parameters: page (from 1) and limit (default 20, at most 100), and ISO 8601 bounds.</summary>
public static class Paging
{
    public const int DefaultLimit = 20;
    public const int MaxLimit = 100;

    public static bool TryRead(string? page, string? limit, out int pageNumber, out int pageSize, out (string Field, string Message)? problem)
    {
        problem = null;
        if (!TryPositive(page, 1, int.MaxValue, out pageNumber))
            problem = ("page", "page must be a whole number from 1.");
        if (!TryPositive(limit, DefaultLimit, MaxLimit, out pageSize))
            problem ??= ("limit", $"limit must be a whole number from 1 to {MaxLimit}.");
        // The offset, (page - 1) * limit, is an int in the queries: past it, the multiplication would wrap to page 1's rows.
        else if ((long)(pageNumber - 1) * pageSize > int.MaxValue)
            problem ??= ("page", "page is beyond the last page any list can have.");
        return problem is null;
    }

    public static bool TryDate(string? text, out DateTimeOffset? value)
    {
        value = null;
        if (string.IsNullOrEmpty(text))
            return true;
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            return false;
        value = parsed;
        return true;
    }

    static bool TryPositive(string? text, int fallback, int max, out int value)
    {
        value = fallback;
        if (string.IsNullOrEmpty(text))
            return true;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= 1 && value <= max;
    }
}
