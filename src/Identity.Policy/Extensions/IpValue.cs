using System.Globalization;
using System.Text;
using Identity.Policy.Values;

namespace Identity.Policy.Extensions;

/// <summary>
/// Cedar <c>ipaddr</c>: an IPv4 or IPv6 address with a prefix length (a CIDR range; a plain address has the
/// full-width prefix). Equality is structural: host bits are kept as written, as in the reference.
/// </summary>
public sealed class IpValue : Value
{
    private IpValue(bool isV6, UInt128 address, int prefix)
    {
        IsV6 = isV6;
        Address = address;
        Prefix = prefix;
    }

    public bool IsV6 { get; }
    public UInt128 Address { get; }
    public int Prefix { get; }
    private int Width => IsV6 ? 128 : 32;

    public static IpValue? Parse(string s) => ParseV4(s) ?? ParseV6(s);

    private static IpValue? ParseV4(string s)
    {
        var parts = s.Split('/');
        if (parts.Length > 2) return null;
        var prefix = 32;
        if (parts.Length == 2 && !TryParsePrefix(parts[1], 2, 32, out prefix)) return null;
        var segs = parts[0].Split('.');
        if (segs.Length != 4) return null;
        uint addr = 0;
        foreach (var seg in segs)
        {
            // Leading zeros are rejected: "010" is ambiguous (octal in some parsers).
            if (seg.Length is 0 or > 3 || (seg.Length > 1 && seg[0] == '0') || !IsDecimal(seg)) return null;
            var n = int.Parse(seg, CultureInfo.InvariantCulture);
            if (n > 255) return null;
            addr = (addr << 8) | (uint)n;
        }
        return new IpValue(false, addr, prefix);
    }

    private static IpValue? ParseV6(string s)
    {
        var parts = s.Split('/');
        if (parts.Length > 2) return null;
        var prefix = 128;
        if (parts.Length == 2 && !TryParsePrefix(parts[1], 3, 128, out prefix)) return null;
        var halves = parts[0].Split("::");
        List<ushort>? segs;
        if (halves.Length == 1)
        {
            segs = ParseV6Groups(halves[0]);
        }
        else if (halves.Length == 2)
        {
            var head = ParseV6Groups(halves[0]);
            var tail = ParseV6Groups(halves[1]);
            if (head is null || tail is null || head.Count + tail.Count >= 8) return null;
            segs = new List<ushort>(head);
            for (var i = head.Count + tail.Count; i < 8; i++) segs.Add(0);
            segs.AddRange(tail);
        }
        else
        {
            return null;
        }
        if (segs is null || segs.Count != 8) return null;
        UInt128 addr = 0;
        foreach (var g in segs) addr = (addr << 16) | g;
        return new IpValue(true, addr, prefix);
    }

    private static List<ushort>? ParseV6Groups(string s)
    {
        var result = new List<ushort>();
        if (s.Length == 0) return result;
        foreach (var g in s.Split(':'))
        {
            if (g.Length is 0 or > 4) return null;
            foreach (var c in g)
                if (!char.IsAsciiHexDigit(c)) return null;
            result.Add(ushort.Parse(g, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
        }
        return result;
    }

    private static bool TryParsePrefix(string s, int maxDigits, int max, out int prefix)
    {
        prefix = 0;
        if (s.Length == 0 || s.Length > maxDigits || (s.Length > 1 && s[0] == '0') || !IsDecimal(s)) return false;
        prefix = int.Parse(s, CultureInfo.InvariantCulture);
        return prefix <= max;
    }

    private static bool IsDecimal(string s)
    {
        foreach (var c in s)
            if (c is < '0' or > '9') return false;
        return true;
    }

    private (UInt128 Lo, UInt128 Hi) Range()
    {
        var hostBits = Width - Prefix;
        var hostMask = hostBits == 0 ? UInt128.Zero : (hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1);
        var lo = Address & ~hostMask;
        return (lo, lo | hostMask);
    }

    /// <summary>True when this range lies entirely within <paramref name="other"/> (same IP version only).</summary>
    public bool IsInRange(IpValue other)
    {
        if (IsV6 != other.IsV6) return false;
        var (lo1, hi1) = Range();
        var (lo2, hi2) = other.Range();
        return hi2 >= hi1 && lo1 >= lo2;
    }

    private static readonly IpValue LoopbackV4 = new(false, 0x7F000000u, 8);
    private static readonly IpValue LoopbackV6 = new(true, 1, 128);
    private static readonly IpValue MulticastV4 = new(false, 0xE0000000u, 4);
    private static readonly IpValue MulticastV6 = new(true, (UInt128)0xFF00 << 112, 8);

    public bool IsLoopback => IsInRange(IsV6 ? LoopbackV6 : LoopbackV4);
    public bool IsMulticast => IsInRange(IsV6 ? MulticastV6 : MulticastV4);

    public override string TypeName => "ipaddr";
    public override bool Equals(Value? other) => other is IpValue ip && ip.IsV6 == IsV6 && ip.Address == Address && ip.Prefix == Prefix;
    public override int GetHashCode() => HashCode.Combine(IsV6, Address, Prefix);

    public override void Write(StringBuilder sb)
    {
        sb.Append("ip(\"");
        if (IsV6)
        {
            for (var i = 7; i >= 0; i--)
            {
                sb.Append(((ushort)(Address >> (i * 16))).ToString("x", CultureInfo.InvariantCulture));
                if (i > 0) sb.Append(':');
            }
        }
        else
        {
            var a = (uint)Address;
            sb.Append(a >> 24).Append('.').Append((a >> 16) & 255).Append('.').Append((a >> 8) & 255).Append('.').Append(a & 255);
        }
        sb.Append('/').Append(Prefix).Append("\")");
    }
}
