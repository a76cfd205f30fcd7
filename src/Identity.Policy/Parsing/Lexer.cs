using System.Text;

namespace Identity.Policy.Parsing;

internal enum TokenKind { Ident, Int, String, Slot, Punct, End }

/// <summary>A token with its 1-based source position. For strings, <see cref="Text"/> is the raw (still escaped) body.</summary>
internal readonly record struct Token(TokenKind Kind, string Text, int Line, int Column)
{
    public bool Is(string punctOrIdent) => (Kind == TokenKind.Punct || Kind == TokenKind.Ident) && Text == punctOrIdent;

    public override string ToString() => Kind switch
    {
        TokenKind.End => "end of input",
        TokenKind.String => $"string \"{Text}\"",
        _ => $"`{Text}`",
    };
}

/// <summary>
/// Tokenizer shared by the policy and schema parsers: identifiers, integers, strings, slots, punctuation and
/// <c>//</c> comments.
/// </summary>
internal static class Lexer
{
    // Longest first, so that "::" wins over ":" and "==" over "=".
    private static readonly string[] Puncts =
        ["::", "==", "!=", "<=", ">=", "&&", "||", "@", ".", ",", ";", ":", "(", ")", "{", "}", "[", "]", "<", ">", "+", "-", "*", "/", "%", "!", "=", "?"];

    public static List<Token> Tokenize(string src)
    {
        var tokens = new List<Token>();
        int i = 0, line = 1, lineStart = 0;
        while (true)
        {
            // Skip whitespace and comments, tracking lines.
            while (i < src.Length)
            {
                var c = src[i];
                if (c == '\n') { line++; lineStart = ++i; }
                else if (char.IsWhiteSpace(c)) i++;
                else if (c == '/' && i + 1 < src.Length && src[i + 1] == '/')
                {
                    while (i < src.Length && src[i] != '\n') i++;
                }
                else break;
            }
            var col = i - lineStart + 1;
            if (i >= src.Length)
            {
                tokens.Add(new Token(TokenKind.End, "", line, col));
                return tokens;
            }
            var ch = src[i];
            if (IsIdentStart(ch))
            {
                var start = i;
                while (i < src.Length && IsIdentPart(src[i])) i++;
                tokens.Add(new Token(TokenKind.Ident, src[start..i], line, col));
            }
            else if (char.IsAsciiDigit(ch))
            {
                var start = i;
                while (i < src.Length && char.IsAsciiDigit(src[i])) i++;
                tokens.Add(new Token(TokenKind.Int, src[start..i], line, col));
            }
            else if (ch == '"')
            {
                var start = ++i;
                while (i < src.Length && src[i] != '"')
                {
                    if (src[i] == '\\') i++;
                    else if (src[i] == '\n') { line++; lineStart = i + 1; }
                    i++;
                }
                if (i >= src.Length) throw new PolicyFormatException("unterminated string literal", line, col);
                tokens.Add(new Token(TokenKind.String, src[start..i], line, col));
                i++;
            }
            else if (ch == '?' && i + 1 < src.Length && IsIdentStart(src[i + 1]))
            {
                var start = i++;
                while (i < src.Length && IsIdentPart(src[i])) i++;
                tokens.Add(new Token(TokenKind.Slot, src[start..i], line, col));
            }
            else
            {
                var p = Array.Find(Puncts, p => string.CompareOrdinal(src, i, p, 0, p.Length) == 0)
                    ?? throw new PolicyFormatException($"unexpected character '{ch}'", line, col);
                tokens.Add(new Token(TokenKind.Punct, p, line, col));
                i += p.Length;
            }
        }
    }

    private static bool IsIdentStart(char c) => c == '_' || char.IsAsciiLetter(c);
    private static bool IsIdentPart(char c) => c == '_' || char.IsAsciiLetterOrDigit(c);

    /// <summary>
    /// Decodes Cedar string escapes (<c>\n \r \t \\ \0 \' \" \xHH \u{hex}</c>). When <paramref name="pattern"/> is set,
    /// <c>\*</c> is a literal star and an unescaped <c>*</c> is a wildcard, encoded as -1 in the returned list.
    /// </summary>
    public static List<int> Unescape(Token tok, bool pattern)
    {
        var raw = tok.Text;
        var result = new List<int>(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (c == '*' && pattern)
            {
                result.Add(-1);
                continue;
            }
            if (c != '\\')
            {
                result.Add(c);
                continue;
            }
            if (++i >= raw.Length) throw Error(tok, "invalid escape at end of string");
            switch (raw[i])
            {
                case 'n': result.Add('\n'); break;
                case 'r': result.Add('\r'); break;
                case 't': result.Add('\t'); break;
                case '0': result.Add('\0'); break;
                case '\\': result.Add('\\'); break;
                case '\'': result.Add('\''); break;
                case '"': result.Add('"'); break;
                case '*' when pattern: result.Add('*'); break;
                case 'x':
                {
                    // \xHH: an ASCII character (at most 0x7F), as in Rust string literals.
                    var hex = raw.Substring(i + 1, Math.Min(2, raw.Length - i - 1));
                    if (hex.Length != 2 || !int.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, null, out var b) || b > 0x7F)
                        throw Error(tok, $"invalid escape \\x{hex}");
                    result.Add(b);
                    i += 2;
                    break;
                }
                case 'u':
                {
                    if (i + 1 >= raw.Length || raw[i + 1] != '{') throw Error(tok, "invalid \\u escape");
                    var close = raw.IndexOf('}', i + 2);
                    if (close < 0 || close - (i + 2) is < 1 or > 6) throw Error(tok, "invalid \\u escape");
                    var hex = raw[(i + 2)..close];
                    if (!int.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, null, out var cp)
                        || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        throw Error(tok, $"invalid unicode escape \\u{{{hex}}}");
                    foreach (var unit in char.ConvertFromUtf32(cp)) result.Add(unit);
                    i = close;
                    break;
                }
                default:
                    throw Error(tok, $"invalid escape sequence \\{raw[i]}");
            }
        }
        return result;
    }

    public static string UnescapeString(Token tok)
    {
        var units = Unescape(tok, pattern: false);
        var sb = new StringBuilder(units.Count);
        foreach (var u in units) sb.Append((char)u);
        return sb.ToString();
    }

    private static PolicyFormatException Error(Token tok, string message) => new(message, tok.Line, tok.Column);
}
