using System.Text;
using Identity.Policy.Values;

namespace Identity.Policy.Extensions;

/// <summary>Cedar <c>decimal</c>: a fixed-point number with four fractional digits, stored scaled by 10^4.</summary>
public sealed class DecimalValue(long scaled) : Value
{
    private const int Digits = 4;

    public long Scaled { get; } = scaled;

    /// <summary>Parses <c>-?[0-9]+\.[0-9]{1,4}</c>; null when malformed or out of the 64-bit range.</summary>
    public static DecimalValue? Parse(string s)
    {
        var dot = s.IndexOf('.');
        if (dot < 0 || s.IndexOf('.', dot + 1) >= 0) return null;
        var left = s.AsSpan(0, dot);
        var right = s.AsSpan(dot + 1);
        if (right.Length is 0 or > Digits) return null;
        var negative = left.Length > 0 && left[0] == '-';
        var intDigits = negative ? left[1..] : left;
        if (intDigits.Length == 0 || !AllDigits(intDigits) || !AllDigits(right)) return null;

        // Accumulate in 128 bits so that overlong integer parts are detected rather than wrapped.
        Int128 value = 0;
        foreach (var c in intDigits)
        {
            value = value * 10 + (c - '0');
            if (value > long.MaxValue) return null;
        }
        Int128 frac = 0;
        foreach (var c in right) frac = frac * 10 + (c - '0');
        for (var i = right.Length; i < Digits; i++) frac *= 10;
        value = value * 10_000 + frac;
        if (negative) value = -value;
        return value < long.MinValue || value > long.MaxValue ? null : new DecimalValue((long)value);
    }

    private static bool AllDigits(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
            if (c is < '0' or > '9') return false;
        return true;
    }

    public override string TypeName => "decimal";
    public override bool Equals(Value? other) => other is DecimalValue d && d.Scaled == Scaled;
    public override int GetHashCode() => HashCode.Combine(3, Scaled);

    public override void Write(StringBuilder sb)
    {
        var abs = Scaled < 0 ? -(Int128)Scaled : Scaled;
        sb.Append("decimal(\"");
        if (Scaled < 0) sb.Append('-');
        sb.Append(abs / 10_000).Append('.').Append((abs % 10_000).ToString().PadLeft(Digits, '0')).Append("\")");
    }
}
