using Identity.Policy.Evaluation;
using Identity.Policy.Values;
using static Identity.Policy.Tests.TestSupport;

namespace Identity.Policy.Tests;

public sealed class ExpressionTests
{
    [Theory]
    [InlineData("1 + 2 * 3 == 7")]
    [InlineData("-9223372036854775808 < 0")]
    [InlineData("!(1 == 2) && (false || true)")]
    [InlineData("!(false && (1 + \"a\"))")]
    [InlineData("true || principal.nope")]
    [InlineData("if 1 < 2 then true else 1 + \"a\"")]
    [InlineData("[1, 2, 2] == [2, 1]")]
    [InlineData("{a: 1, \"b c\": [true]} == {\"b c\": [true], a: 1}")]
    [InlineData("[1, 2, 3].containsAll([3, 1]) && [1].containsAny([4, 1]) && [[1]].contains([1]) && [].isEmpty()")]
    [InlineData("{a: {b: 1}} has a.b && !({a: {}} has a.b)")]
    [InlineData("\"abc*\" like \"a*\\*\" && !(\"abcd\" like \"a*\\*\") && \"\" like \"*\"")]
    [InlineData("\"a\\u{1F600}b\" like \"a*b\"")]
    [InlineData("principal is User && !(principal is Doc) && User::\"alice\" in [User::\"alice\"]")]
    [InlineData("1 != \"1\" && User::\"a\" != Group::\"a\"")]
    public void Evaluates_to_true(string expression) => Assert.Equal(BoolValue.True, Eval(expression));

    [Theory]
    [InlineData("decimal(\"1.5\").lessThan(decimal(\"1.5001\"))", true)]
    [InlineData("decimal(\"-0.5\").lessThan(decimal(\"0.0\")) && decimal(\"2.0\") == decimal(\"2.0000\")", true)]
    [InlineData("decimal(\"922337203685477.5807\").greaterThanOrEqual(decimal(\"0.0001\"))", true)]
    [InlineData("ip(\"10.1.2.3\").isInRange(ip(\"10.0.0.0/8\")) && !ip(\"11.0.0.1\").isInRange(ip(\"10.0.0.0/8\"))", true)]
    [InlineData("ip(\"127.0.0.1\").isLoopback() && ip(\"::1\").isLoopback() && ip(\"ff02::1\").isMulticast() && ip(\"::1\").isIpv6()", true)]
    [InlineData("ip(\"10.0.0.1/24\") == ip(\"10.0.0.0/24\")", false)]
    [InlineData("datetime(\"2024-03-01\").durationSince(datetime(\"2024-02-01\")) == duration(\"29d\")", true)]
    [InlineData("datetime(\"2024-01-01T10:00:00+0200\") == datetime(\"2024-01-01T08:00:00Z\")", true)]
    [InlineData("datetime(\"1969-12-31T23:00:00Z\").toDate() == datetime(\"1969-12-31\")", true)]
    [InlineData("datetime(\"1969-12-31T23:00:00Z\").toTime() == duration(\"23h\")", true)]
    [InlineData("duration(\"1d2h3m4s5ms\").toMilliseconds() == 93784005 && duration(\"-90m\").toHours() == -1", true)]
    [InlineData("datetime(\"2024-01-01\").offset(duration(\"-1ms\")) < datetime(\"2024-01-01\")", true)]
    public void Extension_functions(string expression, bool expected) => Assert.Equal(BoolValue.Of(expected), Eval(expression));

    [Theory]
    [InlineData("9223372036854775807 + 1", "overflow")]
    [InlineData("-9223372036854775807 - 2", "overflow")]
    [InlineData("4611686018427387904 * 2", "overflow")]
    [InlineData("-(-9223372036854775808)", "overflow")]
    [InlineData("1 + true", "type error")]
    [InlineData("1 < \"a\"", "type error")]
    [InlineData("{a: 1}.b", "attribute")]
    [InlineData("User::\"nobody\".name", "does not exist")]
    [InlineData("User::\"a\" in [1]", "type error")]
    [InlineData("decimal(\"1.23456\")", "invalid decimal")]
    [InlineData("datetime(\"2023-02-29\")", "invalid datetime")]
    [InlineData("ip(\"1.2.3.4\").isInRange(1)", "type error")]
    [InlineData("ip(\"1.2.3.4\").isIpv4(1)", "wrong number of arguments")]
    [InlineData("if 1 then 2 else 3", "type error")]
    [InlineData("frobnicate(1)", "unknown extension function")]
    public void Evaluation_errors_say_what_went_wrong(string expression, string fragment)
    {
        var ex = Assert.Throws<EvaluationException>(() => Eval(expression));
        Assert.Contains(fragment, ex.Message);
    }

    [Fact]
    public void A_trailing_comma_in_the_scope_is_allowed() =>
        Assert.Single(PolicySet.Parse("permit(principal, action, resource,);").Policies);

    [Theory]
    [InlineData("permit(principal, action, resource) when { 1 + };", 1, 48)]
    [InlineData("permit(principal, action, resource)\n  when { principal.name == \"x };", 2, 28)]
    [InlineData("permit(principal, action, resource) when { 1 < 2 < 3 };", 1, 50)]
    [InlineData("permit(principal, action, resource) when { 9223372036854775808 };", 1, 44)]
    [InlineData("permit(principal, action, resource) when { foo };", 1, 44)]
    [InlineData("permit(principal, action, resource) when { [1].bogus() };", 1, 48)]
    [InlineData("permit(principal, action, resource)", 1, 36)]
    [InlineData("allow(principal, action, resource);", 1, 1)]
    [InlineData("permit(principal, action is User, resource);", 1, 26)]
    [InlineData("permit(principal == ?resource, action, resource);", 1, 21)]
    [InlineData("permit(principal, action, resource) when { context.a == ?principal };", 1, 57)]
    [InlineData("permit(principal, action, resource) when { \"\\q\" };", 1, 44)]
    [InlineData("permit(principal, action, resource) when { context.if };", 1, 52)]
    [InlineData("permit(principal, action, resource) when { {in: 1} };", 1, 45)]
    [InlineData("permit(principal, action == User::\"x\", resource);", 1, 29)]
    [InlineData("permit(principal, action, resource) when { a::b(1) };", 1, 44)]
    public void Parse_errors_report_line_and_column(string text, int line, int column)
    {
        var ex = Assert.Throws<PolicyFormatException>(() => PolicySet.Parse(text));
        Assert.Equal((line, column), (ex.Line, ex.Column));
        Assert.Contains($"line {line}, column {column}", ex.Message);
    }

    public static TheoryData<string> Nestings(int depth) => new()
    {
        string.Concat(Enumerable.Repeat("{a: ", depth)) + "1" + new string('}', depth) + " != {}",
        new string('(', depth) + "true" + new string(')', depth),
        new string('[', depth) + new string(']', depth) + " != []",
        string.Concat(Enumerable.Repeat("true && ", depth)) + "true",
        string.Concat(Enumerable.Repeat("1 + ", depth)) + "1 > 0",
        "true || context" + string.Concat(Enumerable.Repeat(".a", depth)) + " == 1",
        "context has " + string.Join('.', Enumerable.Repeat("a", depth)) + " || true",
    };

    public static TheoryData<string> TooDeep => Nestings(20_000);
    public static TheoryData<string> DeepButAllowed => Nestings(Parsing.PolicyParser.MaxDepth - 10);

    /// <summary>A stack overflow ends the process: a policy a few kilobytes long must not be able to cause one.</summary>
    [Theory]
    [MemberData(nameof(TooDeep))]
    public void Expressions_nested_too_deep_are_a_parse_error(string expression)
    {
        var ex = Assert.Throws<PolicyFormatException>(() => PolicySet.Parse($"permit(principal, action, resource) when {{ {expression} }};"));
        Assert.Contains("nests more than", ex.Message);
    }

    /// <summary>Up to the bound, parsing and evaluating fit in a thread stack smaller than the server's (1.5 MB).</summary>
    [Theory]
    [MemberData(nameof(DeepButAllowed))]
    public void Expressions_nested_up_to_the_bound_still_evaluate(string expression)
    {
        AuthorizationResult? result = null;
        var thread = new Thread(() => result = Authorize($"permit(principal, action, resource) when {{ {expression} }};",
            Uid("User", "alice"), Uid("Action", "view"), Uid("Doc", "d")), maxStackSize: 1024 * 1024);
        thread.Start();
        thread.Join();
        Assert.Equal(Decision.Allow, result!.Decision);
    }
}
