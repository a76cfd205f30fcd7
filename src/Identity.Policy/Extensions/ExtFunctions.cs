using Identity.Policy.Evaluation;
using Identity.Policy.Values;

namespace Identity.Policy.Extensions;

public enum ExtFunction
{
    Decimal, LessThan, LessThanOrEqual, GreaterThan, GreaterThanOrEqual,
    Ip, IsIpv4, IsIpv6, IsLoopback, IsMulticast, IsInRange,
    Datetime, Duration, Offset, DurationSince, ToDate, ToTime, ToMilliseconds, ToSeconds, ToMinutes, ToHours, ToDays,
}

/// <summary>The extension functions: their surface names, call style, arity and semantics.</summary>
public static class ExtFunctions
{
    /// <summary>Constructors are called as functions, <c>ip("...")</c>; everything else as methods, <c>a.isIpv4()</c>.</summary>
    public static readonly IReadOnlyDictionary<string, ExtFunction> Constructors = new Dictionary<string, ExtFunction>(StringComparer.Ordinal)
    {
        ["decimal"] = ExtFunction.Decimal,
        ["ip"] = ExtFunction.Ip,
        ["datetime"] = ExtFunction.Datetime,
        ["duration"] = ExtFunction.Duration,
    };

    public static readonly IReadOnlyDictionary<string, ExtFunction> Methods = new Dictionary<string, ExtFunction>(StringComparer.Ordinal)
    {
        ["lessThan"] = ExtFunction.LessThan,
        ["lessThanOrEqual"] = ExtFunction.LessThanOrEqual,
        ["greaterThan"] = ExtFunction.GreaterThan,
        ["greaterThanOrEqual"] = ExtFunction.GreaterThanOrEqual,
        ["isIpv4"] = ExtFunction.IsIpv4,
        ["isIpv6"] = ExtFunction.IsIpv6,
        ["isLoopback"] = ExtFunction.IsLoopback,
        ["isMulticast"] = ExtFunction.IsMulticast,
        ["isInRange"] = ExtFunction.IsInRange,
        ["offset"] = ExtFunction.Offset,
        ["durationSince"] = ExtFunction.DurationSince,
        ["toDate"] = ExtFunction.ToDate,
        ["toTime"] = ExtFunction.ToTime,
        ["toMilliseconds"] = ExtFunction.ToMilliseconds,
        ["toSeconds"] = ExtFunction.ToSeconds,
        ["toMinutes"] = ExtFunction.ToMinutes,
        ["toHours"] = ExtFunction.ToHours,
        ["toDays"] = ExtFunction.ToDays,
    };

    /// <summary>Number of arguments, counting a method's receiver.</summary>
    public static int Arity(ExtFunction f) => f switch
    {
        ExtFunction.LessThan or ExtFunction.LessThanOrEqual or ExtFunction.GreaterThan or ExtFunction.GreaterThanOrEqual
            or ExtFunction.IsInRange or ExtFunction.Offset or ExtFunction.DurationSince => 2,
        _ => 1,
    };

    /// <summary>Parses a constructor argument; null if the string is not a valid literal for it.</summary>
    public static Value? Construct(ExtFunction constructor, string arg) => constructor switch
    {
        ExtFunction.Decimal => DecimalValue.Parse(arg),
        ExtFunction.Ip => IpValue.Parse(arg),
        ExtFunction.Datetime => DatetimeValue.Parse(arg),
        ExtFunction.Duration => DurationValue.Parse(arg),
        _ => null,
    };

    public static bool IsConstructor(ExtFunction f) => f is ExtFunction.Decimal or ExtFunction.Ip or ExtFunction.Datetime or ExtFunction.Duration;

    /// <summary>Looks a function up by name, whatever its call style (used by the JSON <c>__extn</c> form).</summary>
    public static bool TryGetByName(string name, out ExtFunction f) =>
        Constructors.TryGetValue(name, out f) || Methods.TryGetValue(name, out f);

    /// <summary>The constructor for an extension type name (<c>ipaddr</c> is built by <c>ip</c>).</summary>
    public static ExtFunction ConstructorFor(string typeName) => typeName switch
    {
        "ipaddr" => ExtFunction.Ip,
        "decimal" => ExtFunction.Decimal,
        "datetime" => ExtFunction.Datetime,
        "duration" => ExtFunction.Duration,
        _ => throw new PolicyFormatException($"unknown extension type `{typeName}`"),
    };

    public static Value Call(ExtFunction f, Value[] args)
    {
        if (args.Length != Arity(f))
            throw new EvaluationException($"wrong number of arguments to `{f}`: expected {Arity(f)}, got {args.Length}");
        switch (f)
        {
            case ExtFunction.Decimal:
            case ExtFunction.Ip:
            case ExtFunction.Datetime:
            case ExtFunction.Duration:
            {
                var s = args[0] as StringValue ?? throw EvaluationException.TypeError("string", args[0]);
                return Construct(f, s.Value) ?? throw new EvaluationException($"invalid {f.ToString().ToLowerInvariant()} literal \"{s.Value}\"");
            }
            case ExtFunction.LessThan:
                return BoolValue.Of(Dec(args[0]) < Dec(args[1]));
            case ExtFunction.LessThanOrEqual:
                return BoolValue.Of(Dec(args[0]) <= Dec(args[1]));
            case ExtFunction.GreaterThan:
                return BoolValue.Of(Dec(args[0]) > Dec(args[1]));
            case ExtFunction.GreaterThanOrEqual:
                return BoolValue.Of(Dec(args[0]) >= Dec(args[1]));
            case ExtFunction.IsIpv4:
                return BoolValue.Of(!Ip(args[0]).IsV6);
            case ExtFunction.IsIpv6:
                return BoolValue.Of(Ip(args[0]).IsV6);
            case ExtFunction.IsLoopback:
                return BoolValue.Of(Ip(args[0]).IsLoopback);
            case ExtFunction.IsMulticast:
                return BoolValue.Of(Ip(args[0]).IsMulticast);
            case ExtFunction.IsInRange:
                return BoolValue.Of(Ip(args[0]).IsInRange(Ip(args[1])));
            case ExtFunction.Offset:
            {
                var dt = Datetime(args[0]);
                var d = Duration(args[1]);
                var r = unchecked(dt + d);
                if (((dt ^ r) & (d ^ r)) < 0) throw new EvaluationException("overflow while applying a duration offset");
                return new DatetimeValue(r);
            }
            case ExtFunction.DurationSince:
            {
                var a = Datetime(args[0]);
                var b = Datetime(args[1]);
                var r = unchecked(a - b);
                if (((a ^ b) & (a ^ r)) < 0) throw new EvaluationException("overflow while computing durationSince");
                return new DurationValue(r);
            }
            case ExtFunction.ToDate:
                return ((DatetimeValue)Check(args[0], "datetime")).ToDate() ?? throw new EvaluationException("overflow in toDate");
            case ExtFunction.ToTime:
                return ((DatetimeValue)Check(args[0], "datetime")).ToTime();
            case ExtFunction.ToMilliseconds:
                return new LongValue(Duration(args[0]));
            case ExtFunction.ToSeconds:
                return new LongValue(Duration(args[0]) / 1000);
            case ExtFunction.ToMinutes:
                return new LongValue(Duration(args[0]) / 60_000);
            case ExtFunction.ToHours:
                return new LongValue(Duration(args[0]) / 3_600_000);
            default:
                return new LongValue(Duration(args[0]) / 86_400_000);
        }
    }

    private static Value Check(Value v, string type) =>
        v.TypeName == type ? v : throw EvaluationException.TypeError(type, v);

    private static long Dec(Value v) => ((DecimalValue)Check(v, "decimal")).Scaled;
    private static IpValue Ip(Value v) => (IpValue)Check(v, "ipaddr");
    private static long Datetime(Value v) => ((DatetimeValue)Check(v, "datetime")).Millis;
    private static long Duration(Value v) => ((DurationValue)Check(v, "duration")).Millis;
}
