using System.Numerics;
using System.Text;
using Identity.Policy.Values;

namespace Identity.Policy.Extensions;

/// <summary>Cedar <c>datetime</c>: milliseconds since the Unix epoch (UTC).</summary>
public sealed class DatetimeValue(long millis) : Value
{
    internal const long MillisPerDay = 86_400_000;

    public long Millis { get; } = millis;

    /// <summary>
    /// Accepts <c>YYYY-MM-DD</c>, optionally followed by <c>Thh:mm:ss</c>, optional <c>.SSS</c>, and then
    /// <c>Z</c> or a <c>(+|-)hhmm</c> offset. The offset is normalised away (the value is UTC).
    /// </summary>
    public static DatetimeValue? Parse(string s)
    {
        if (s.Length < 10 || !Digits(s, 0, 4, out var year) || s[4] != '-' || !Digits(s, 5, 2, out var month)
            || s[7] != '-' || !Digits(s, 8, 2, out var day))
            return null;
        if (month is < 1 or > 12 || day < 1 || day > DaysInMonth(year, month)) return null;
        long days = DaysFromCivil(year, month, day);
        if (s.Length == 10) return new DatetimeValue(days * MillisPerDay);

        if (s.Length < 20 || s[10] != 'T' || !Digits(s, 11, 2, out var hh) || s[13] != ':' || !Digits(s, 14, 2, out var mm)
            || s[16] != ':' || !Digits(s, 17, 2, out var ss))
            return null;
        if (hh > 23 || mm > 59 || ss > 59) return null;
        var pos = 19;
        long ms = 0;
        if (s[pos] == '.')
        {
            if (!Digits(s, pos + 1, 3, out ms)) return null;
            pos += 4;
        }
        long offsetMillis = 0;
        if (pos < s.Length && s[pos] == 'Z')
        {
            pos++;
        }
        else if (pos < s.Length && (s[pos] == '+' || s[pos] == '-'))
        {
            if (!Digits(s, pos + 1, 2, out var oh) || !Digits(s, pos + 3, 2, out var om)) return null;
            if (oh > 23 || om > 59) return null;
            offsetMillis = (oh * 3600 + om * 60) * 1000 * (s[pos] == '-' ? -1 : 1);
            pos += 5;
        }
        else
        {
            return null;
        }
        if (pos != s.Length) return null;
        var total = days * MillisPerDay + ((hh * 60 + mm) * 60 + ss) * 1000 + ms - offsetMillis;
        return new DatetimeValue(total);
    }

    private static bool Digits(string s, int start, int count, out long value)
    {
        value = 0;
        if (start + count > s.Length) return false;
        for (var i = start; i < start + count; i++)
        {
            var c = s[i];
            if (c is < '0' or > '9') return false;
            value = value * 10 + (c - '0');
        }
        return true;
    }

    private static long DaysInMonth(long year, long month)
    {
        if (month == 2) return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28;
        return month is 4 or 6 or 9 or 11 ? 30 : 31;
    }

    // Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static long DaysFromCivil(long y, long m, long d)
    {
        y -= m <= 2 ? 1 : 0;
        var era = (y >= 0 ? y : y - 399) / 400;
        var yoe = y - era * 400;
        var doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        var doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
    }

    /// <summary>Midnight (UTC) of this datetime's day; null on overflow.</summary>
    public DatetimeValue? ToDate()
    {
        if (Millis >= 0) return new DatetimeValue(Millis / MillisPerDay * MillisPerDay);
        if (Millis % MillisPerDay == 0) return this;
        var d = (BigInteger)(Millis / MillisPerDay - 1) * MillisPerDay;
        return d < long.MinValue ? null : new DatetimeValue((long)d);
    }

    /// <summary>Time elapsed since midnight (UTC) of this datetime's day.</summary>
    public DurationValue ToTime()
    {
        var rem = Millis % MillisPerDay;
        return new DurationValue(rem < 0 ? rem + MillisPerDay : rem);
    }

    public override string TypeName => "datetime";
    public override bool Equals(Value? other) => other is DatetimeValue d && d.Millis == Millis;
    public override int GetHashCode() => HashCode.Combine(5, Millis);
    public override void Write(StringBuilder sb) => sb.Append("datetime(\"").Append(DateTimeOffset.UnixEpoch.AddMilliseconds(Millis).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'")).Append("\")");
}

/// <summary>Cedar <c>duration</c>: a signed number of milliseconds.</summary>
public sealed class DurationValue(long millis) : Value
{
    public long Millis { get; } = millis;

    private static readonly (string Suffix, long Factor)[] Units =
        [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];

    /// <summary>
    /// Parses an optional <c>-</c> followed by quantity-unit pairs in the order d, h, m, s, ms, each unit at most
    /// once and at least one present. Null when malformed or when the total exceeds 64 bits.
    /// </summary>
    public static DurationValue? Parse(string s)
    {
        var negative = s.StartsWith('-');
        var pos = negative ? 1 : 0;
        if (pos == s.Length) return null;
        BigInteger total = 0;
        var nextUnit = 0;
        while (pos < s.Length)
        {
            var start = pos;
            while (pos < s.Length && char.IsAsciiDigit(s[pos])) pos++;
            if (pos == start) return null;
            var quantity = BigInteger.Parse(s.AsSpan(start, pos - start));
            var unit = -1;
            for (var u = nextUnit; u < Units.Length; u++)
            {
                var suffix = Units[u].Suffix;
                if (string.CompareOrdinal(s, pos, suffix, 0, suffix.Length) != 0) continue;
                // "m" must not swallow the "m" of "ms".
                if (suffix == "m" && pos + 1 < s.Length && s[pos + 1] == 's') continue;
                unit = u;
                break;
            }
            if (unit < 0) return null;
            // Each signed quantity must itself fit in 64 bits, as in the reference.
            if (quantity > (negative ? (BigInteger)long.MaxValue + 1 : long.MaxValue)) return null;
            total += quantity * Units[unit].Factor;
            pos += Units[unit].Suffix.Length;
            nextUnit = unit + 1;
        }
        if (negative) total = -total;
        return total < long.MinValue || total > long.MaxValue ? null : new DurationValue((long)total);
    }

    public override string TypeName => "duration";
    public override bool Equals(Value? other) => other is DurationValue d && d.Millis == Millis;
    public override int GetHashCode() => HashCode.Combine(7, Millis);
    public override void Write(StringBuilder sb) => sb.Append("duration(\"").Append(Millis).Append("ms\")");
}
