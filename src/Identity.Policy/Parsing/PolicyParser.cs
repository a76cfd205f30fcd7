using System.Globalization;
using System.Text;
using Identity.Policy.Ast;
using Identity.Policy.Extensions;
using Identity.Policy.Values;

namespace Identity.Policy.Parsing;

/// <summary>Recursive-descent parser for Cedar policy text (grammar as in the reference's grammar.lalrpop).</summary>
internal sealed class PolicyParser
{
    /// <summary>
    /// How deep an expression may nest: each parenthesis, record, set, argument list and each link of an operator or
    /// attribute chain counts one. Parsing, validation and evaluation all recurse over the tree, and without a bound
    /// a few kilobytes of policy nest deep enough to overflow the stack, which no handler can catch: the process ends.
    /// </summary>
    internal const int MaxDepth = 200;

    private readonly List<Token> _tokens;
    private int _pos;
    private int _depth;

    private PolicyParser(string text) => _tokens = Lexer.Tokenize(text);

    /// <summary>Parses every policy and template; <paramref name="idFor"/> names each from its index and annotations.</summary>
    public static List<CedarPolicy> ParsePolicies(string text, Func<int, IReadOnlyDictionary<string, string>, string> idFor)
    {
        var parser = new PolicyParser(text);
        var result = new List<CedarPolicy>();
        while (parser.Peek.Kind != TokenKind.End)
            result.Add(parser.ParsePolicy(result.Count, idFor));
        return result;
    }

    /// <summary>Parses a single expression (used by tests and tools).</summary>
    public static Expr ParseExpression(string text)
    {
        var parser = new PolicyParser(text);
        var e = parser.ParseExpr();
        parser.Expect(TokenKind.End);
        return e;
    }

    private Token Peek => _tokens[_pos];
    private Token PeekAt(int offset) => _tokens[Math.Min(_pos + offset, _tokens.Count - 1)];
    /// <summary>Consumes a token; the final end-of-input token is never consumed, so peeking stays in range.</summary>
    private Token Next()
    {
        var tok = _tokens[_pos];
        if (_pos < _tokens.Count - 1) _pos++;
        return tok;
    }

    private bool Accept(string punct)
    {
        if (!Peek.Is(punct)) return false;
        _pos++;
        return true;
    }

    private Token Expect(string punct)
    {
        if (!Peek.Is(punct)) throw Error(Peek, $"expected `{punct}`, found {Peek}");
        return Next();
    }

    private Token Expect(TokenKind kind)
    {
        if (Peek.Kind != kind) throw Error(Peek, $"expected {kind.ToString().ToLowerInvariant()}, found {Peek}");
        return Next();
    }

    private static PolicyFormatException Error(Token at, string message) => new(message, at.Line, at.Column);

    /// <summary>Keywords that cannot name attributes, record keys or path segments.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal)
        { "true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar" };

    /// <summary>An identifier usable as an attribute name, record key or path segment.</summary>
    private Token ExpectName()
    {
        var tok = Expect(TokenKind.Ident);
        if (Reserved.Contains(tok.Text)) throw Error(tok, $"`{tok.Text}` is a reserved identifier");
        return tok;
    }

    private CedarPolicy ParsePolicy(int index, Func<int, IReadOnlyDictionary<string, string>, string> idFor)
    {
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        while (Accept("@"))
        {
            var key = Expect(TokenKind.Ident);
            var value = "";
            if (Accept("("))
            {
                value = Lexer.UnescapeString(Expect(TokenKind.String));
                Expect(")");
            }
            if (!annotations.TryAdd(key.Text, value)) throw Error(key, $"duplicate annotation @{key.Text}");
        }
        var effectTok = Expect(TokenKind.Ident);
        var effect = effectTok.Text switch
        {
            "permit" => Effect.Permit,
            "forbid" => Effect.Forbid,
            _ => throw Error(effectTok, $"expected `permit` or `forbid`, found {effectTok}"),
        };
        Expect("(");
        var principal = ParseScope("principal", SlotKind.Principal);
        Expect(",");
        var action = ParseActionScope();
        Expect(",");
        var resource = ParseScope("resource", SlotKind.Resource);
        Accept(",");
        Expect(")");
        var conditions = new List<Condition>();
        while (Peek.Kind == TokenKind.Ident)
        {
            var kw = Next();
            if (kw.Text is not ("when" or "unless")) throw Error(kw, $"expected `when` or `unless`, found {kw}");
            var open = Expect("{");
            if (Peek.Is("}")) throw Error(open, $"`{kw.Text}` clause is empty");
            conditions.Add(new Condition(kw.Text == "when", ParseExpr()));
            Expect("}");
        }
        Expect(";");
        return new CedarPolicy(idFor(index, annotations), effect, principal, action, resource, conditions, annotations);
    }

    private void ExpectVariable(string name)
    {
        var tok = Expect(TokenKind.Ident);
        if (tok.Text != name) throw Error(tok, $"expected `{name}`, found {tok}");
    }

    private ScopeConstraint ParseScope(string variable, SlotKind slot)
    {
        ExpectVariable(variable);
        if (Accept("=="))
            return ParseScopeTarget(slot, out var s) is { } uid ? new ScopeConstraint(ScopeKind.Eq, uid) : new ScopeConstraint(ScopeKind.Eq, slot: s);
        if (Peek.Is("in"))
        {
            Next();
            return ParseScopeTarget(slot, out var s) is { } uid ? new ScopeConstraint(ScopeKind.In, uid) : new ScopeConstraint(ScopeKind.In, slot: s);
        }
        if (Peek.Is("is"))
        {
            Next();
            var type = ParsePath();
            if (!Peek.Is("in")) return new ScopeConstraint(ScopeKind.Is, entityType: type);
            Next();
            return ParseScopeTarget(slot, out var s) is { } uid
                ? new ScopeConstraint(ScopeKind.IsIn, uid, type)
                : new ScopeConstraint(ScopeKind.IsIn, entityType: type, slot: s);
        }
        return ScopeConstraint.Any;
    }

    /// <summary>An entity literal, or the variable's own slot (returned through <paramref name="slot"/>).</summary>
    private EntityUid? ParseScopeTarget(SlotKind allowed, out SlotKind? slot)
    {
        slot = null;
        if (Peek.Kind == TokenKind.Slot)
        {
            var tok = Next();
            var expected = "?" + allowed.ToString().ToLowerInvariant();
            if (tok.Text != expected) throw Error(tok, $"expected slot {expected}, found {tok}");
            slot = allowed;
            return null;
        }
        return ParseEntityLiteral();
    }

    private ScopeConstraint ParseActionScope()
    {
        ExpectVariable("action");
        if (Accept("==")) return new ScopeConstraint(ScopeKind.Eq, ParseActionLiteral());
        if (Peek.Is("in"))
        {
            Next();
            if (!Accept("[")) return new ScopeConstraint(ScopeKind.In, ParseActionLiteral());
            var list = new List<EntityUid>();
            while (!Peek.Is("]"))
            {
                list.Add(ParseActionLiteral());
                if (!Accept(",")) break;
            }
            Expect("]");
            return new ScopeConstraint(ScopeKind.InList, entities: [.. list]);
        }
        if (Peek.Is("is")) throw Error(Peek, "`is` is not allowed in the action scope");
        return ScopeConstraint.Any;
    }

    /// <summary>An entity literal of an action type (<c>Action</c> or <c>Namespace::Action</c>).</summary>
    private EntityUid ParseActionLiteral()
    {
        var start = Peek;
        var uid = ParseEntityLiteral();
        if (uid.Type != "Action" && !uid.Type.EndsWith("::Action", StringComparison.Ordinal))
            throw Error(start, $"the action scope expects entities of type `Action`, found {uid}");
        return uid;
    }

    private EntityUid ParseEntityLiteral()
    {
        var start = Peek;
        var type = ParsePath(allowEntityRef: true);
        Expect("::");
        if (Peek.Kind != TokenKind.String) throw Error(start, $"expected an entity literal, found {Peek}");
        return new EntityUid(type, Lexer.UnescapeString(Next()));
    }

    /// <summary>
    /// Parses <c>Ident (:: Ident)*</c>. With <paramref name="allowEntityRef"/>, stops before a <c>::</c> that is
    /// followed by a string (the id of an entity literal).
    /// </summary>
    private string ParsePath(bool allowEntityRef = false)
    {
        var sb = new StringBuilder(ExpectName().Text);
        while (Peek.Is("::") && PeekAt(1).Kind == TokenKind.Ident)
        {
            Next();
            sb.Append("::").Append(ExpectName().Text);
        }
        if (!allowEntityRef && Peek.Is("::")) throw Error(Peek, "expected an identifier after `::`");
        return sb.ToString();
    }

    // ---- expressions ----

    /// <summary>One level deeper; a parse error past <see cref="MaxDepth"/>. Callers restore the depth they began at.</summary>
    private void Nest()
    {
        if (++_depth > MaxDepth) throw Error(Peek, $"the expression nests more than {MaxDepth} levels deep; simplify it");
    }

    private Expr ParseExpr()
    {
        var depth = _depth;
        Nest();
        Expr result;
        if (Peek.Is("if"))
        {
            Next();
            var c = ParseExpr();
            Expect("then");
            var t = ParseExpr();
            Expect("else");
            var e = ParseExpr();
            result = new IfExpr(c, t, e);
        }
        else
        {
            result = ParseOr();
        }
        _depth = depth;
        return result;
    }

    private Expr ParseOr()
    {
        var depth = _depth;
        var left = ParseAnd();
        while (Accept("||"))
        {
            Nest();
            left = new OrExpr(left, ParseAnd());
        }
        _depth = depth;
        return left;
    }

    private Expr ParseAnd()
    {
        var depth = _depth;
        var left = ParseRelation();
        while (Accept("&&"))
        {
            Nest();
            left = new AndExpr(left, ParseRelation());
        }
        _depth = depth;
        return left;
    }

    private Expr ParseRelation()
    {
        var left = ParseAdd();
        var op = Peek;
        Expr result;
        switch (op.Text)
        {
            case "==" or "!=" or "<" or "<=" or ">" or ">=" when op.Kind == TokenKind.Punct:
            {
                Next();
                var right = ParseAdd();
                result = op.Text switch
                {
                    "==" => new BinaryExpr(BinaryOp.Eq, left, right),
                    "!=" => new UnaryExpr(UnaryOp.Not, new BinaryExpr(BinaryOp.Eq, left, right)),
                    "<" => new BinaryExpr(BinaryOp.Less, left, right),
                    "<=" => new BinaryExpr(BinaryOp.LessEq, left, right),
                    // a > b is b < a, as in the reference.
                    ">" => new BinaryExpr(BinaryOp.Less, right, left),
                    _ => new BinaryExpr(BinaryOp.LessEq, right, left),
                };
                break;
            }
            case "=" when op.Kind == TokenKind.Punct:
                throw Error(op, "`=` is not an operator; use `==`");
            case "in" when op.Kind == TokenKind.Ident:
                Next();
                result = new BinaryExpr(BinaryOp.In, left, ParseAdd());
                break;
            case "has" when op.Kind == TokenKind.Ident:
                Next();
                result = ParseHas(left);
                break;
            case "like" when op.Kind == TokenKind.Ident:
            {
                Next();
                var pat = Expect(TokenKind.String);
                result = new LikeExpr(left, new Pattern([.. Lexer.Unescape(pat, pattern: true)]));
                break;
            }
            case "is" when op.Kind == TokenKind.Ident:
            {
                Next();
                var type = ParsePath();
                result = new IsExpr(left, type);
                if (Peek.Is("in"))
                {
                    Next();
                    result = new AndExpr(result, new BinaryExpr(BinaryOp.In, left, ParseAdd()));
                }
                break;
            }
            default:
                return left;
        }
        if (Peek.Kind == TokenKind.Punct && Peek.Text is "==" or "!=" or "<" or "<=" or ">" or ">=" || Peek.Is("in") || Peek.Is("has") || Peek.Is("like") || Peek.Is("is"))
            throw Error(Peek, $"comparison operators cannot be chained; add parentheses before {Peek}");
        return result;
    }

    /// <summary><c>e has a</c>, <c>e has "a"</c>, or <c>e has a.b.c</c> (meaning <c>e has a &amp;&amp; e.a has b &amp;&amp; ...</c>).</summary>
    private Expr ParseHas(Expr target)
    {
        if (Peek.Kind == TokenKind.String) return new HasAttrExpr(target, Lexer.UnescapeString(Next()));
        var first = ExpectName();
        var path = new List<string> { first.Text };
        var depth = _depth;
        while (Accept("."))
        {
            Nest();
            path.Add(ExpectName().Text);
        }
        _depth = depth;
        Expr result = new HasAttrExpr(target, path[0]);
        Expr access = target;
        for (var i = 1; i < path.Count; i++)
        {
            access = new GetAttrExpr(access, path[i - 1]);
            result = new AndExpr(result, new HasAttrExpr(access, path[i]));
        }
        return result;
    }

    private Expr ParseAdd()
    {
        var depth = _depth;
        var left = ParseMult();
        while (Peek.Kind == TokenKind.Punct && Peek.Text is "+" or "-")
        {
            Nest();
            var op = Next().Text == "+" ? BinaryOp.Add : BinaryOp.Sub;
            left = new BinaryExpr(op, left, ParseMult());
        }
        _depth = depth;
        return left;
    }

    private Expr ParseMult()
    {
        var depth = _depth;
        var left = ParseUnary();
        while (true)
        {
            if (Accept("*"))
            {
                Nest();
                left = new BinaryExpr(BinaryOp.Mul, left, ParseUnary());
            }
            else if (Peek.Is("/") || Peek.Is("%")) throw Error(Peek, $"the `{Peek.Text}` operator is not supported");
            else
            {
                _depth = depth;
                return left;
            }
        }
    }

    private Expr ParseUnary()
    {
        var first = Peek;
        if (!first.Is("!") && !first.Is("-")) return ParseMember();
        var ops = new List<string>();
        while (Peek.Is("!") || Peek.Is("-")) ops.Add(Next().Text);
        if (ops.Count > 4) throw Error(first, "too many unary operators; use parentheses");
        Expr operand;
        var count = ops.Count;
        // A minus directly before an integer literal makes a negative literal, so that i64::MIN is expressible.
        if (ops[^1] == "-" && Peek.Kind == TokenKind.Int && !IsFollowedByAccess())
        {
            var tok = Next();
            operand = new LiteralExpr(new LongValue(ParseLong(tok, negative: true)));
            count--;
        }
        else
        {
            operand = ParseMember();
        }
        for (var i = count - 1; i >= 0; i--)
            operand = new UnaryExpr(ops[i] == "!" ? UnaryOp.Not : UnaryOp.Neg, operand);
        return operand;
    }

    private bool IsFollowedByAccess() => PeekAt(1).Is(".") || PeekAt(1).Is("[") || PeekAt(1).Is("(");

    private static long ParseLong(Token tok, bool negative)
    {
        if (!ulong.TryParse(tok.Text, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            || n > (negative ? 9223372036854775808UL : long.MaxValue))
            throw Error(tok, $"integer literal {(negative ? "-" : "")}{tok.Text} is out of range");
        return negative ? (long)(0 - n) : (long)n;
    }

    private Expr ParseMember()
    {
        var depth = _depth;
        var e = ParsePrimary();
        while (true)
        {
            if (Peek.Is(".") || Peek.Is("["))
                Nest();
            if (Accept("."))
            {
                var name = ExpectName();
                if (Peek.Is("("))
                {
                    Next();
                    var args = ParseArgs(")");
                    e = MakeMethodCall(name, e, args);
                }
                else
                {
                    e = new GetAttrExpr(e, name.Text);
                }
            }
            else if (Peek.Is("["))
            {
                Next();
                var key = Expect(TokenKind.String);
                Expect("]");
                e = new GetAttrExpr(e, Lexer.UnescapeString(key));
            }
            else if (Peek.Is("("))
            {
                throw Error(Peek, "this expression cannot be called as a function");
            }
            else
            {
                _depth = depth;
                return e;
            }
        }
    }

    private List<Expr> ParseArgs(string close)
    {
        var args = new List<Expr>();
        while (!Peek.Is(close))
        {
            args.Add(ParseExpr());
            if (!Accept(",")) break;
        }
        Expect(close);
        return args;
    }

    private static Expr MakeMethodCall(Token name, Expr receiver, List<Expr> args)
    {
        void Arity(int n)
        {
            if (args.Count != n) throw Error(name, $"`{name.Text}` expects {n} argument{(n == 1 ? "" : "s")}, found {args.Count}");
        }
        switch (name.Text)
        {
            case "contains": Arity(1); return new BinaryExpr(BinaryOp.Contains, receiver, args[0]);
            case "containsAll": Arity(1); return new BinaryExpr(BinaryOp.ContainsAll, receiver, args[0]);
            case "containsAny": Arity(1); return new BinaryExpr(BinaryOp.ContainsAny, receiver, args[0]);
            case "getTag": Arity(1); return new BinaryExpr(BinaryOp.GetTag, receiver, args[0]);
            case "hasTag": Arity(1); return new BinaryExpr(BinaryOp.HasTag, receiver, args[0]);
            case "isEmpty": Arity(0); return new UnaryExpr(UnaryOp.IsEmpty, receiver);
        }
        if (!ExtFunctions.Methods.TryGetValue(name.Text, out var f))
            throw Error(name, ExtFunctions.Constructors.ContainsKey(name.Text)
                ? $"`{name.Text}` is a function, not a method"
                : $"unknown method `{name.Text}`");
        // A wrong argument count for an extension function is an evaluation error, not a parse error.
        args.Insert(0, receiver);
        return new ExtCallExpr(f, [.. args]);
    }

    private Expr ParsePrimary()
    {
        var tok = Peek;
        switch (tok.Kind)
        {
            case TokenKind.Int:
                Next();
                return new LiteralExpr(new LongValue(ParseLong(tok, negative: false)));
            case TokenKind.String:
                Next();
                return new LiteralExpr(new StringValue(Lexer.UnescapeString(tok)));
            case TokenKind.Slot:
                Next();
                throw Error(tok, $"template slot {tok.Text} may only appear in the policy scope");
            case TokenKind.Punct when tok.Text == "(":
            {
                Next();
                var e = ParseExpr();
                Expect(")");
                return e;
            }
            case TokenKind.Punct when tok.Text == "[":
                Next();
                return new SetExpr([.. ParseArgs("]")]);
            case TokenKind.Punct when tok.Text == "{":
                Next();
                return ParseRecord();
            case TokenKind.Ident:
                return ParseName();
            default:
                throw Error(tok, $"unexpected {tok}");
        }
    }

    private Expr ParseRecord()
    {
        var fields = new List<KeyValuePair<string, Expr>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (!Peek.Is("}"))
        {
            var keyTok = Next();
            var key = keyTok.Kind switch
            {
                TokenKind.Ident when Reserved.Contains(keyTok.Text) => throw Error(keyTok, $"`{keyTok.Text}` is a reserved identifier"),
                TokenKind.Ident => keyTok.Text,
                TokenKind.String => Lexer.UnescapeString(keyTok),
                _ => throw Error(keyTok, $"expected a record key, found {keyTok}"),
            };
            if (!seen.Add(key)) throw Error(keyTok, $"duplicate record key `{key}`");
            Expect(":");
            fields.Add(new(key, ParseExpr()));
            if (!Accept(",")) break;
        }
        Expect("}");
        return new RecordExpr([.. fields]);
    }

    private Expr ParseName()
    {
        var tok = Peek;
        switch (tok.Text)
        {
            case "true": Next(); return new LiteralExpr(BoolValue.True);
            case "false": Next(); return new LiteralExpr(BoolValue.False);
        }
        var path = ParsePath(allowEntityRef: true);
        if (Peek.Is("::"))
        {
            Next();
            var id = Expect(TokenKind.String);
            return new LiteralExpr(new EntityUid(path, Lexer.UnescapeString(id)));
        }
        if (Peek.Is("("))
        {
            Next();
            var args = ParseArgs(")");
            if (ExtFunctions.Methods.ContainsKey(path)) throw Error(tok, $"`{path}` is a method, not a function");
            if (path.Contains("::")) throw Error(tok, $"unknown function `{path}`");
            // As in the reference, calling an unknown unqualified function is an evaluation error, not a parse error.
            return ExtFunctions.Constructors.TryGetValue(path, out var f) ? new ExtCallExpr(f, [.. args]) : new UnknownFunctionExpr(path, [.. args]);
        }
        return path switch
        {
            "principal" => new VarExpr(Var.Principal),
            "action" => new VarExpr(Var.Action),
            "resource" => new VarExpr(Var.Resource),
            "context" => new VarExpr(Var.Context),
            _ => throw Error(tok, $"unknown variable `{path}`"),
        };
    }
}
