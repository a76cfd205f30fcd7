using System.Globalization;
using System.Linq.Expressions;
using System.Text.Json;

namespace Identity.Server.Scim;

/// <summary>
/// The filter language of RFC 7644 §3.4.2.2 (eq ne co sw ew gt ge lt le pr, and/or/not, parentheses, value paths
/// such as <c>emails[value eq "x"]</c>), parsed into a tree and then turned into a LINQ predicate over a resource's
/// attributes, so the database does the filtering. Anything it cannot read throws <see cref="ScimException"/>
/// (400 invalidFilter).
/// </summary>
public abstract record ScimFilter
{
    public sealed record Compare(string Path, string Operator, JsonElement? Value) : ScimFilter;
    public sealed record And(ScimFilter Left, ScimFilter Right) : ScimFilter;
    public sealed record Or(ScimFilter Left, ScimFilter Right) : ScimFilter;
    public sealed record Not(ScimFilter Inner) : ScimFilter;

    static readonly HashSet<string> Operators = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];

    /// <summary>Filters longer than this are refused before parsing: no client needs one, and the parser recurses.</summary>
    public const int MaxLength = 2048;

    public static ScimFilter Parse(string text)
    {
        if (text.Length > MaxLength)
            throw Invalid($"A filter may be at most {MaxLength} characters.");
        var parser = new Parser(Tokenize(text));
        var filter = parser.Or(prefix: "");
        if (!parser.AtEnd)
            throw Invalid($"Unexpected '{parser.Peek}' in the filter.");
        return filter;
    }

    static ScimException Invalid(string detail) => new(400, ScimErrors.InvalidFilter, detail);

    // Tokens: ( ) [ ], JSON string literals (kept with their quotes), and words (attribute paths, operators, true,
    // false, null, numbers).
    static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        for (var i = 0; i < text.Length;)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
                i++;
            else if (c is '(' or ')' or '[' or ']')
            {
                tokens.Add(c.ToString());
                i++;
            }
            else if (c == '"')
            {
                var start = i++;
                while (i < text.Length && text[i] != '"')
                    i += text[i] == '\\' ? 2 : 1;
                if (i >= text.Length)
                    throw Invalid("A string in the filter is not closed.");
                tokens.Add(text[start..++i]);
            }
            else
            {
                var start = i;
                while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] is not ('(' or ')' or '[' or ']' or '"'))
                    i++;
                tokens.Add(text[start..i]);
            }
        }
        return tokens;
    }

    sealed class Parser(List<string> tokens)
    {
        int position;

        public bool AtEnd => position >= tokens.Count;
        public string Peek => AtEnd ? "end of filter" : tokens[position];

        string Next() => AtEnd ? throw Invalid("The filter ends too early.") : tokens[position++];

        bool Accept(string word)
        {
            if (AtEnd || !string.Equals(tokens[position], word, StringComparison.OrdinalIgnoreCase))
                return false;
            position++;
            return true;
        }

        void Expect(string token)
        {
            if (!Accept(token))
                throw Invalid($"Expected '{token}' but found '{Peek}'.");
        }

        // Precedence, loosest first: or, and, not / grouping / comparison.
        public ScimFilter Or(string prefix)
        {
            var left = And(prefix);
            while (Accept("or"))
                left = new Or(left, And(prefix));
            return left;
        }

        ScimFilter And(string prefix)
        {
            var left = Unary(prefix);
            while (Accept("and"))
                left = new And(left, Unary(prefix));
            return left;
        }

        ScimFilter Unary(string prefix)
        {
            if (Accept("not"))
            {
                Expect("(");
                var inner = Or(prefix);
                Expect(")");
                return new Not(inner);
            }
            if (Accept("("))
            {
                var inner = Or(prefix);
                Expect(")");
                return inner;
            }

            var attribute = Next();
            if (attribute is "(" or ")" or "[" or "]" || attribute.StartsWith('"'))
                throw Invalid($"Expected an attribute but found '{attribute}'.");
            var path = prefix + ScimPaths.Normalize(attribute);
            // A value path, emails[type eq "work" and value co "@example.com"]: its sub-attributes belong to it.
            if (Accept("["))
            {
                if (prefix.Length > 0)
                    throw Invalid("Value paths cannot be nested.");
                var inner = Or(path + ".");
                Expect("]");
                return inner;
            }

            var op = Next().ToLowerInvariant();
            if (!Operators.Contains(op))
                throw Invalid($"'{op}' is not a filter operator.");
            if (op == "pr")
                return new Compare(path, op, null);
            return new Compare(path, op, Literal(Next()));
        }

        static JsonElement Literal(string token)
        {
            if (token is "(" or ")" or "[" or "]")
                throw Invalid($"Expected a value but found '{token}'.");
            var lowered = token.ToLowerInvariant();
            var json = lowered is "true" or "false" or "null" ? lowered : token;
            try
            {
                using var document = JsonDocument.Parse(json);
                return document.RootElement.Clone();
            }
            catch (JsonException)
            {
                throw Invalid($"'{token}' is not a value: strings are in double quotes.");
            }
        }
    }
}

/// <summary>Attribute paths as RFC 7643 writes them: case-insensitive, optionally prefixed by their schema's URN.</summary>
public static class ScimPaths
{
    /// <summary>The lower-cased path with a core schema URN prefix taken off; other URNs stay (and match nothing).</summary>
    public static string Normalize(string path)
    {
        foreach (var schema in (string[])[ScimSchemas.User, ScimSchemas.Group])
            if (path.StartsWith(schema + ":", StringComparison.OrdinalIgnoreCase))
                return path[(schema.Length + 1)..].ToLowerInvariant();
        return path.ToLowerInvariant();
    }
}

/// <summary>
/// What a filter may name on one resource type, and how each attribute reads from the stored entity. Strings that
/// are not case-exact compare upper-cased on both sides (RFC 7643 §2.2, caseExact false).
/// </summary>
public sealed class ScimAttributes<T>
{
    abstract record Attribute;
    sealed record Text(Expression<Func<T, string?>> Read, bool CaseExact, bool UpperCased) : Attribute;
    sealed record Flag(Expression<Func<T, bool>> Read) : Attribute;
    sealed record Instant(Expression<Func<T, DateTimeOffset>> Read) : Attribute;
    sealed record Membership(Func<string, Expression<Func<T, bool>>> Contains) : Attribute;

    readonly Dictionary<string, Attribute> attributes = new(StringComparer.Ordinal);

    /// <summary>
    /// A string attribute; <paramref name="upperCased"/> when <paramref name="read"/> is a column stored upper-cased
    /// (ASP.NET Core Identity's normalized email), which is compared as it is, so its index serves.
    /// </summary>
    public ScimAttributes<T> String(string path, Expression<Func<T, string?>> read, bool caseExact = false, bool upperCased = false)
    {
        attributes[path] = new Text(read, caseExact, upperCased);
        return this;
    }

    public ScimAttributes<T> Boolean(string path, Expression<Func<T, bool>> read)
    {
        attributes[path] = new Flag(read);
        return this;
    }

    public ScimAttributes<T> DateTime(string path, Expression<Func<T, DateTimeOffset>> read)
    {
        attributes[path] = new Instant(read);
        return this;
    }

    /// <summary>A multi-valued reference (members.value): eq only, true when the resource holds the given id.</summary>
    public ScimAttributes<T> Reference(string path, Func<string, Expression<Func<T, bool>>> contains)
    {
        attributes[path] = new Membership(contains);
        return this;
    }

    static readonly ParameterExpression Item = Expression.Parameter(typeof(T), "item");

    public Expression<Func<T, bool>> Predicate(ScimFilter filter) => Expression.Lambda<Func<T, bool>>(Build(filter), Item);

    Expression Build(ScimFilter filter) => filter switch
    {
        ScimFilter.And and => Expression.AndAlso(Build(and.Left), Build(and.Right)),
        ScimFilter.Or or => Expression.OrElse(Build(or.Left), Build(or.Right)),
        ScimFilter.Not not => Expression.Not(Build(not.Inner)),
        ScimFilter.Compare compare => Compare(compare),
        _ => throw new ArgumentOutOfRangeException(nameof(filter)),
    };

    Expression Compare(ScimFilter.Compare compare)
    {
        // A complex attribute named alone compares its value sub-attribute (emails eq "x" means emails.value eq "x").
        if (!attributes.TryGetValue(compare.Path, out var attribute) && !attributes.TryGetValue(compare.Path + ".value", out attribute))
            throw Invalid($"'{compare.Path}' cannot be filtered on.");
        return attribute switch
        {
            Text text => CompareText(text, compare),
            Flag flag => CompareFlag(flag, compare),
            Instant instant => CompareInstant(instant, compare),
            Membership membership when compare.Operator == "eq" && compare.Value is { ValueKind: JsonValueKind.String } value =>
                Body(membership.Contains(value.GetString()!)),
            Membership => throw Invalid($"'{compare.Path}' supports eq with a string only."),
            _ => throw new ArgumentOutOfRangeException(nameof(compare)),
        };
    }

    static ScimException Invalid(string detail) => new(400, ScimErrors.InvalidFilter, detail);

    /// <summary>
    /// sortBy and sortOrder (RFC 7644 §3.4.2.3): the resources in the order of one attribute, strings ignoring case
    /// unless the attribute is case-exact. Resources without a value come last ascending and first descending, as the
    /// RFC asks (databases disagree on where NULL sorts). Ties are broken by id, so pages neither overlap nor skip.
    /// </summary>
    public IOrderedQueryable<T> Sort(IQueryable<T> query, string path, bool descending)
    {
        if (!attributes.TryGetValue(path, out var attribute) && !attributes.TryGetValue(path + ".value", out attribute))
            throw new ScimException(400, ScimErrors.InvalidValue, $"'{path}' cannot be sorted on.");
        var id = ((Text)attributes["id"]).Read;
        return attribute switch
        {
            // The same for every resource (emails.type is always "work"): only the ties are left.
            Text { Read.Body: ConstantExpression } or Flag { Read.Body: ConstantExpression } => query.OrderBy(id),
            Text text when text.Read == id => Order(query, id, descending),
            Text text => Order(query, Key(text), descending, Missing(text)).ThenBy(id),
            Flag flag => Order(query, flag.Read, descending).ThenBy(id),
            Instant instant => Order(query, instant.Read, descending).ThenBy(id),
            _ => throw new ScimException(400, ScimErrors.InvalidValue, $"'{path}' cannot be sorted on."),
        };
    }

    static IOrderedQueryable<T> Order<TKey>(IQueryable<T> query, Expression<Func<T, TKey>> key, bool descending, Expression<Func<T, bool>>? missing = null)
    {
        if (missing is null)
            return descending ? query.OrderByDescending(key) : query.OrderBy(key);
        // false (has a value) before true ascending; the other way round descending.
        return descending ? query.OrderByDescending(missing).ThenByDescending(key) : query.OrderBy(missing).ThenBy(key);
    }

    static Expression<Func<T, string?>> Key(Text text) => text.CaseExact || text.UpperCased ? text.Read
        : Expression.Lambda<Func<T, string?>>(Expression.Call(Body(text.Read), nameof(string.ToUpper), Type.EmptyTypes), Item);

    static Expression<Func<T, bool>> Missing(Text text) => Expression.Lambda<Func<T, bool>>(Expression.OrElse(
        Expression.Equal(Body(text.Read), Expression.Constant(null, typeof(string))), Expression.Equal(Body(text.Read), Expression.Constant(""))), Item);

    static Expression Body<TResult>(Expression<Func<T, TResult>> read) => new Rebind(read.Parameters[0], Item).Visit(read.Body);

    static Expression CompareText(Text text, ScimFilter.Compare compare)
    {
        var read = Body(text.Read);
        if (compare.Operator == "pr")
            return Expression.AndAlso(Expression.NotEqual(read, Expression.Constant(null, typeof(string))),
                Expression.NotEqual(read, Expression.Constant("")));
        if (compare.Value is not { } value || value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            throw Invalid($"'{compare.Path}' is a string: compare it with a string in double quotes.");
        var operand = value.GetString();
        if (operand is null)
            return compare.Operator switch
            {
                "eq" => Expression.Equal(read, Expression.Constant(null, typeof(string))),
                "ne" => Expression.NotEqual(read, Expression.Constant(null, typeof(string))),
                _ => throw Invalid($"{compare.Operator} cannot compare with null."),
            };
        if (!text.CaseExact)
        {
            if (!text.UpperCased)
                read = Expression.Call(read, nameof(string.ToUpper), Type.EmptyTypes);
            operand = operand.ToUpperInvariant();
        }
        var constant = Expression.Constant(operand);
        var notNull = Expression.NotEqual(Body(text.Read), Expression.Constant(null, typeof(string)));
        Expression StringCall(string method) => Expression.AndAlso(notNull, Expression.Call(read, method, Type.EmptyTypes, constant));
        Expression Ordered(ExpressionType type) => Expression.AndAlso(notNull, Expression.MakeBinary(type,
            Expression.Call(typeof(string), nameof(string.Compare), Type.EmptyTypes, read, constant), Expression.Constant(0)));
        return compare.Operator switch
        {
            "eq" => Expression.Equal(read, constant),
            "ne" => Expression.OrElse(Expression.Not(notNull), Expression.NotEqual(read, constant)),
            "co" => StringCall(nameof(string.Contains)),
            "sw" => StringCall(nameof(string.StartsWith)),
            "ew" => StringCall(nameof(string.EndsWith)),
            "gt" => Ordered(ExpressionType.GreaterThan),
            "ge" => Ordered(ExpressionType.GreaterThanOrEqual),
            "lt" => Ordered(ExpressionType.LessThan),
            "le" => Ordered(ExpressionType.LessThanOrEqual),
            _ => throw Invalid($"{compare.Operator} does not apply to strings."),
        };
    }

    static Expression CompareFlag(Flag flag, ScimFilter.Compare compare)
    {
        var read = Body(flag.Read);
        if (compare.Operator == "pr")
            return Expression.Constant(true);
        if (compare.Value is not { ValueKind: JsonValueKind.True or JsonValueKind.False } value)
            throw Invalid($"'{compare.Path}' is a boolean: compare it with true or false.");
        var constant = Expression.Constant(value.GetBoolean());
        return compare.Operator switch
        {
            "eq" => Expression.Equal(read, constant),
            "ne" => Expression.NotEqual(read, constant),
            _ => throw Invalid($"{compare.Operator} does not apply to booleans."),
        };
    }

    static Expression CompareInstant(Instant instant, ScimFilter.Compare compare)
    {
        var read = Body(instant.Read);
        if (compare.Operator == "pr")
            return Expression.Constant(true);
        if (compare.Value is not { ValueKind: JsonValueKind.String } value ||
            !DateTimeOffset.TryParse(value.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var moment))
            throw Invalid($"'{compare.Path}' is a date: compare it with an ISO 8601 date in double quotes.");
        var constant = Expression.Constant(moment.ToUniversalTime());
        var type = compare.Operator switch
        {
            "eq" => ExpressionType.Equal,
            "ne" => ExpressionType.NotEqual,
            "gt" => ExpressionType.GreaterThan,
            "ge" => ExpressionType.GreaterThanOrEqual,
            "lt" => ExpressionType.LessThan,
            "le" => ExpressionType.LessThanOrEqual,
            _ => throw Invalid($"{compare.Operator} does not apply to dates."),
        };
        return Expression.MakeBinary(type, read, constant);
    }

    sealed class Rebind(ParameterExpression from, ParameterExpression to) : ExpressionVisitor
    {
        protected override Expression VisitParameter(ParameterExpression node) => node == from ? to : node;
    }
}
