using System.Text;
using Identity.Policy.Parsing;
using Identity.Policy.Values;

namespace Identity.Policy.Schema;

/// <summary>Parser for the Cedar schema syntax (<c>namespace</c>, <c>entity</c>, <c>action</c>, <c>type</c>).</summary>
internal sealed class CedarSchemaParser
{
    private readonly List<Token> _tokens;
    private readonly SchemaBuilder _builder = new();
    private int _pos;

    private CedarSchemaParser(string text) => _tokens = Lexer.Tokenize(text);

    public static CedarSchema Parse(string text)
    {
        var p = new CedarSchemaParser(text);
        while (p.Peek.Kind != TokenKind.End) p.ParseTopLevel();
        return p._builder.Build();
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

    private bool Accept(string text)
    {
        if (!Peek.Is(text)) return false;
        Next();
        return true;
    }

    private Token Expect(string text) => Peek.Is(text) ? Next() : throw Error($"expected `{text}`, found {Peek}");

    private Token Expect(TokenKind kind) => Peek.Kind == kind ? Next() : throw Error($"expected {kind.ToString().ToLowerInvariant()}, found {Peek}");

    private PolicyFormatException Error(string message) => Error(Peek, message);

    private static PolicyFormatException Error(Token at, string message) => new(message, at.Line, at.Column);

    // `__cedar` is not listed: it prefixes built-in type names (`__cedar::Long`); it is rejected as a namespace.
    private static readonly HashSet<string> ReservedIdentifiers = new(StringComparer.Ordinal)
        { "true", "false", "if", "then", "else", "in", "is", "like", "has" };

    // Names of built-in types cannot be redeclared as common types.
    private static readonly HashSet<string> ReservedTypeNames = new(StringComparer.Ordinal)
        { "Bool", "Boolean", "Long", "String", "Set", "Record", "Entity", "Extension" };

    /// <summary>An identifier that may name an entity type, common type, attribute or namespace segment.</summary>
    private Token ExpectIdentifier()
    {
        var tok = Expect(TokenKind.Ident);
        if (ReservedIdentifiers.Contains(tok.Text)) throw Error(tok, $"`{tok.Text}` is a reserved identifier");
        return tok;
    }

    private void SkipAnnotations()
    {
        while (Accept("@"))
        {
            Expect(TokenKind.Ident);
            if (Accept("("))
            {
                Expect(TokenKind.String);
                Expect(")");
            }
        }
    }

    private void ParseTopLevel()
    {
        SkipAnnotations();
        if (Peek.Is("namespace") && PeekAt(1).Kind == TokenKind.Ident)
        {
            var nsTok = Next();
            var ns = ParsePath();
            if (ns == "__cedar" || ns.StartsWith("__cedar::", StringComparison.Ordinal))
                throw Error(nsTok, "the `__cedar` namespace is reserved");
            Expect("{");
            while (!Accept("}")) ParseDeclaration(ns);
            return;
        }
        ParseDeclaration("");
    }

    private string ParsePath()
    {
        var sb = new StringBuilder(ExpectIdentifier().Text);
        while (Peek.Is("::") && PeekAt(1).Kind == TokenKind.Ident)
        {
            Next();
            sb.Append("::").Append(ExpectIdentifier().Text);
        }
        return sb.ToString();
    }

    private void ParseDeclaration(string ns)
    {
        SkipAnnotations();
        var kw = Expect(TokenKind.Ident);
        switch (kw.Text)
        {
            case "entity": ParseEntity(ns); break;
            case "action": ParseAction(ns); break;
            case "type":
            {
                var nameTok = ExpectIdentifier();
                if (ReservedTypeNames.Contains(nameTok.Text)) throw Error(nameTok, $"`{nameTok.Text}` is a built-in type name");
                var name = nameTok.Text;
                Expect("=");
                _builder.AddCommonType(ns, name, ParseType(ns));
                Expect(";");
                break;
            }
            default:
                throw Error(kw, $"expected `entity`, `action` or `type`, found {kw}");
        }
    }

    private void ParseEntity(string ns)
    {
        var names = new List<string> { ExpectIdentifier().Text };
        while (Accept(",")) names.Add(ExpectIdentifier().Text);
        List<string>? enumIds = null;
        var memberOf = new List<RawName>();
        RawType? shape = null, tags = null;
        if (Accept("enum"))
        {
            Expect("[");
            enumIds = [];
            while (!Peek.Is("]"))
            {
                enumIds.Add(Lexer.UnescapeString(Expect(TokenKind.String)));
                if (!Accept(",")) break;
            }
            var close = Expect("]");
            if (enumIds.Count == 0) throw Error(close, "an enumerated entity type needs at least one id");
        }
        else
        {
            if (Accept("in"))
            {
                foreach (var t in ParseTypeList()) memberOf.Add(new RawName(t, ns, EntityOnly: true));
            }
            if (Peek.Is("=") || Peek.Is("{"))
            {
                Accept("=");
                shape = ParseRecordType(ns);
            }
            if (Accept("tags")) tags = ParseType(ns);
        }
        Expect(";");
        foreach (var name in names) _builder.AddEntityType(ns, name, memberOf, shape, tags, enumIds);
    }

    private List<string> ParseTypeList()
    {
        var list = new List<string>();
        if (!Accept("["))
        {
            list.Add(ParsePath());
            return list;
        }
        while (!Peek.Is("]"))
        {
            list.Add(ParsePath());
            if (!Accept(",")) break;
        }
        Expect("]");
        return list;
    }

    private string ParseName() =>
        Peek.Kind == TokenKind.String ? Lexer.UnescapeString(Next()) : Expect(TokenKind.Ident).Text;

    private void ParseAction(string ns)
    {
        var names = new List<string> { ParseName() };
        while (Accept(",")) names.Add(ParseName());
        var memberOf = new List<EntityUid>();
        if (Accept("in"))
        {
            if (Accept("["))
            {
                while (!Peek.Is("]"))
                {
                    memberOf.Add(ParseActionRef(ns));
                    if (!Accept(",")) break;
                }
                Expect("]");
            }
            else
            {
                memberOf.Add(ParseActionRef(ns));
            }
        }
        List<RawName>? principals = null, resources = null;
        RawType? context = null;
        if (Accept("appliesTo"))
        {
            Expect("{");
            while (!Peek.Is("}"))
            {
                var key = Expect(TokenKind.Ident);
                Expect(":");
                switch (key.Text)
                {
                    case "principal": principals = ParseTypeList().ConvertAll(t => new RawName(t, ns, EntityOnly: true)); break;
                    case "resource": resources = ParseTypeList().ConvertAll(t => new RawName(t, ns, EntityOnly: true)); break;
                    case "context": context = ParseType(ns); break;
                    default: throw Error(key, $"expected `principal`, `resource` or `context`, found {key}");
                }
                if (!Accept(",")) break;
            }
            var close = Expect("}");
            if (principals is null || resources is null)
                throw Error(close, $"`appliesTo` of action \"{names[0]}\" must declare both `principal` and `resource`");
        }
        Expect(";");
        var actionType = SchemaBuilder.Qualify(ns, "Action");
        foreach (var name in names)
            _builder.AddAction(ns, new EntityUid(actionType, name), memberOf, principals, resources, context);
    }

    /// <summary><c>"name"</c> (an action of this namespace) or <c>Path::Action::"name"</c>.</summary>
    private EntityUid ParseActionRef(string ns)
    {
        if (Peek.Kind == TokenKind.String) return new EntityUid(SchemaBuilder.Qualify(ns, "Action"), Lexer.UnescapeString(Next()));
        var path = ParsePath();
        if (Accept("::")) return new EntityUid(path, Lexer.UnescapeString(Expect(TokenKind.String)));
        return new EntityUid(SchemaBuilder.Qualify(ns, "Action"), path);
    }

    private RawType ParseType(string ns)
    {
        if (Peek.Is("{")) return ParseRecordType(ns);
        if (Peek.Is("Set") && PeekAt(1).Is("<"))
        {
            Next();
            Next();
            var element = ParseType(ns);
            Expect(">");
            return new RawSet(element);
        }
        return new RawName(ParsePath(), ns);
    }

    private RawRecord ParseRecordType(string ns)
    {
        Expect("{");
        var attrs = new List<(string, RawType, bool)>();
        while (!Peek.Is("}"))
        {
            SkipAnnotations();
            var name = Peek.Kind == TokenKind.String ? Lexer.UnescapeString(Next()) : ExpectIdentifier().Text;
            var required = !Accept("?");
            Expect(":");
            attrs.Add((name, ParseType(ns), required));
            if (!Accept(",")) break;
        }
        Expect("}");
        return new RawRecord(attrs);
    }
}
