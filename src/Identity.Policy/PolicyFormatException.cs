namespace Identity.Policy;

/// <summary>Malformed input: policy text, schema, entity or request JSON. Carries a position when known.</summary>
public class PolicyFormatException : Exception
{
    public PolicyFormatException(string message) : base(message) { }

    public PolicyFormatException(string message, int line, int column)
        : base($"{message} at line {line}, column {column}")
    {
        Line = line;
        Column = column;
    }

    /// <summary>1-based line of the error, or 0 when not applicable.</summary>
    public int Line { get; }

    /// <summary>1-based column of the error, or 0 when not applicable.</summary>
    public int Column { get; }
}
