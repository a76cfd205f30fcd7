namespace Identity.Server.Hosting;

/// <summary>
/// Names and descriptions: text people read in lists, audit entries and emails. Besides a length bound, no control
/// characters (PostgreSQL refuses NUL outright, which would be a 500 at the database) and no bidirectional controls,
/// which make a name display as something else ("\u202Eevil" reads backwards). Descriptions may have line breaks.
/// </summary>
public static class FreeText
{
    /// <summary>What is wrong with <paramref name="value"/> as the <paramref name="what"/>, or null when it is fine.</summary>
    public static string? Problem(string? value, string what, int maxLength, bool multiline = false)
    {
        if (value is null)
            return null;
        if (value.Length > maxLength)
            return $"The {what} is longer than {maxLength} characters.";
        foreach (var c in value)
        {
            if (multiline && c is '\n' or '\r' or '\t')
                continue;
            if (char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069')
                return $"The {what} contains a control character (U+{(int)c:X4}).";
        }
        return null;
    }
}
