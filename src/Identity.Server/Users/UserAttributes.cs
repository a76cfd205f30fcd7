using System.Security.Claims;
using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Users;

/// <summary>
/// Custom user attributes that become token claims: Keycloak's user profile attributes with their protocol mappers,
/// Auth0's app_metadata with a custom-claims Action, Duende's profile service. Each is declared in configuration
/// (Identity:UserAttributes:N: Name, Scope, Multivalued, Scim), set by administrators on /api/v1/users or by a SCIM
/// directory (ScimUsers), and read afresh with the account at every sign-in and renewal, so a change shows in the next
/// token. Access tokens always carry them, as they carry name and email; the identity token and userinfo carry one
/// when its Scope is granted. An attribute that is no longer declared stays stored but goes into no token.
/// Stored in ASP.NET Core Identity's user claims table, one row per value (nothing else uses that table).
/// </summary>
public sealed partial class UserAttributes
{
    public const string Section = "Identity:UserAttributes";
    public const int MaxValueLength = 1024;
    public const int MaxValues = 100;

    public sealed class Declaration
    {
        /// <summary>The attribute's name, and the claim's: lower case, digits and _ (department, employee_id, given_name).</summary>
        public string Name { get; set; } = "";

        /// <summary>The scope that puts it into identity tokens and userinfo (profile, say); without one, access tokens only.</summary>
        public string? Scope { get; set; }

        /// <summary>Several values, written as a JSON array in tokens; otherwise one value, written as a string.</summary>
        public bool Multivalued { get; set; }

        /// <summary>
        /// The SCIM attribute a directory provisions it as (a single-valued one): one of the User schema's
        /// (<c>title</c>) or of the enterprise extension's (<c>urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department</c>).
        /// </summary>
        public string? Scim { get; set; }
    }

    /// <summary>A declared attribute a directory provisions: <see cref="Extension"/> is null for the User schema's own attributes.</summary>
    public sealed record ScimMapping(string? Extension, string Attribute, Declaration Declaration)
    {
        /// <summary>As SCIM paths are compared: lower case, the extension's URN before the attribute.</summary>
        public string Path { get; } = (Extension is null ? Attribute : $"{Extension}:{Attribute}").ToLowerInvariant();
    }

    // The single-valued string attributes of RFC 7643 (§4.1.1 and §4.3) a directory sends and this server keeps no
    // column for; manager (complex) and the multivalued ones are not offered.
    static readonly string[] ScimUserAttributes = ["title", "userType", "preferredLanguage", "locale", "timezone", "nickName", "profileUrl"];
    static readonly string[] ScimEnterpriseAttributes = ["employeeNumber", "costCenter", "organization", "division", "department"];

    /// <summary>The claim property marking an attribute's claim, holding its scope ("" for none): ClaimDestinations reads it.</summary>
    public const string ScopeProperty = ".identity_attribute_scope";

    // What this server or the JWT/OIDC protocols already put in tokens, under its own rules, and the account's own
    // name fields (SCIM writes given_name and family_name on the account; the user name is its email).
    static readonly HashSet<string> Reserved =
    [
        "sub", "iss", "aud", "exp", "iat", "nbf", "jti", "azp", "nonce", "at_hash", "c_hash", "s_hash", "scope", "client_id", "cnf", "auth_time",
        "acr", "amr", "act", "may_act", "sid", "idp", "name", "email", "email_verified", "roles", "groups", "org_id", "org_domain", "typ", "token_type",
        "events", "updated_at", "entitlements", "given_name", "family_name", "preferred_username",
    ];

    readonly Dictionary<string, Declaration> declared;

    UserAttributes(Dictionary<string, Declaration> declared)
    {
        this.declared = declared;
        ScimMappings = [.. declared.Values.Where(d => d.Scim is not null).Select(d => ScimMappingOf(d.Scim!, d)!)];
    }

    public IReadOnlyCollection<Declaration> Declared => declared.Values;
    public bool Any => declared.Count > 0;

    /// <summary>The attributes a SCIM directory provisions, in declaration order.</summary>
    public IReadOnlyList<ScimMapping> ScimMappings { get; }

    static ScimMapping? ScimMappingOf(string path, Declaration declaration)
    {
        var extension = path.StartsWith(Scim.ScimSchemas.EnterpriseUser + ":", StringComparison.OrdinalIgnoreCase) ? Scim.ScimSchemas.EnterpriseUser : null;
        var name = extension is null ? path : path[(extension.Length + 1)..];
        var known = (extension is null ? ScimUserAttributes : ScimEnterpriseAttributes).FirstOrDefault(a => a.Equals(name, StringComparison.OrdinalIgnoreCase));
        return known is null ? null : new ScimMapping(extension, known, declaration);
    }

    /// <summary>The declarations, checked: a name that would clash or a scope the server does not know stops the start with the reason.</summary>
    public static UserAttributes Load(IConfiguration configuration, IEnumerable<string> knownScopes)
    {
        var scopes = knownScopes.ToHashSet(StringComparer.Ordinal);
        var declared = new Dictionary<string, Declaration>(StringComparer.Ordinal);
        foreach (var (declaration, index) in (configuration.GetSection(Section).Get<List<Declaration>>() ?? []).Select((d, i) => (d, i)))
        {
            var at = $"{Section}:{index}";
            if (!NamePattern().IsMatch(declaration.Name) || declaration.Name.StartsWith("oi_", StringComparison.Ordinal))
                throw new InvalidOperationException($"{at}:Name must be 1 to 64 lower-case letters, digits and _, starting with a letter (and not oi_).");
            if (Reserved.Contains(declaration.Name))
                throw new InvalidOperationException($"{at}:Name '{declaration.Name}' is a claim this server already issues under its own rules.");
            if (declaration.Scope is { } scope && !scopes.Contains(scope))
                throw new InvalidOperationException($"{at}:Scope '{scope}' is not a scope of this server ({string.Join(", ", scopes.Order(StringComparer.Ordinal))}).");
            if (declaration.Scim is { } path)
            {
                if (ScimMappingOf(path, declaration) is not { } mapping)
                    throw new InvalidOperationException($"{at}:Scim '{path}' is not a single-valued SCIM attribute this server can keep: one of " +
                        $"{string.Join(", ", ScimUserAttributes)}, or {Scim.ScimSchemas.EnterpriseUser}: followed by one of {string.Join(", ", ScimEnterpriseAttributes)}.");
                if (declaration.Multivalued)
                    throw new InvalidOperationException($"{at}: a multivalued attribute cannot come from SCIM, whose attribute '{path}' holds one value.");
                if (declared.Values.FirstOrDefault(d => d.Scim is not null && ScimMappingOf(d.Scim, d)!.Path == mapping.Path) is { } other)
                    throw new InvalidOperationException($"{at}:Scim '{path}' is already the SCIM attribute of '{other.Name}'.");
            }
            if (!declared.TryAdd(declaration.Name, declaration))
                throw new InvalidOperationException($"{at}:Name '{declaration.Name}' is declared twice.");
        }
        return new UserAttributes(declared);
    }

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    private static partial Regex NamePattern();

    /// <summary>The attributes of several accounts, by account, in one query: declared ones only, values in stored order.</summary>
    public async Task<Dictionary<string, Dictionary<string, List<string>>>> OfAsync(IdentityDbContext db, IReadOnlyCollection<string> userIds)
    {
        var result = userIds.ToDictionary(id => id, _ => new Dictionary<string, List<string>>(StringComparer.Ordinal));
        if (!Any)
            return result;
        var names = declared.Keys.ToList();
        var rows = await db.UserClaims.AsNoTracking().Where(c => userIds.Contains(c.UserId) && names.Contains(c.ClaimType!)).OrderBy(c => c.Id).ToListAsync();
        foreach (var row in rows)
            (result[row.UserId].TryGetValue(row.ClaimType!, out var values) ? values : result[row.UserId][row.ClaimType!] = []).Add(row.ClaimValue ?? "");
        return result;
    }

    /// <summary>
    /// Reads the attributes of a request body: each named one is replaced (a string, or an array of strings for a
    /// multivalued one), null or [] removes it, and those not named stay. A problem names its field (attributes.name).
    /// </summary>
    public (Dictionary<string, List<string>> Changes, string? Problem, string? Field) Read(Dictionary<string, JsonElement>? body)
    {
        var changes = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (name, value) in body ?? [])
        {
            var field = $"attributes.{name}";
            if (!declared.TryGetValue(name, out var declaration))
                return (changes, Any ? $"There is no attribute '{name}'; declared: {string.Join(", ", declared.Keys.Order(StringComparer.Ordinal))}."
                    : "No user attributes are declared on this server (Identity:UserAttributes).", field);
            List<string>? values = value.ValueKind switch
            {
                JsonValueKind.Null => [],
                JsonValueKind.String => [value.GetString()!],
                JsonValueKind.Array when value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String) => [.. value.EnumerateArray().Select(v => v.GetString()!)],
                _ => null,
            };
            if (values is null)
                return (changes, $"{name} must be a string{(declaration.Multivalued ? " or an array of strings" : "")}, or null to remove it.", field);
            if (!declaration.Multivalued && values.Count > 1)
                return (changes, $"{name} takes one value.", field);
            if (values.Count > MaxValues)
                return (changes, $"{name} takes at most {MaxValues} values.", field);
            if (values.Any(v => !IsValue(v)))
                return (changes, $"Each value of {name} must be 1 to {MaxValueLength} characters, without control characters (null removes it).", field);
            changes[name] = values;
        }
        return (changes, null, null);
    }

    /// <summary>What a stored value may be: 1 to <see cref="MaxValueLength"/> characters, no control characters.</summary>
    public static bool IsValue(string value) => value.Length is > 0 and <= MaxValueLength && !value.Any(char.IsControl);

    /// <summary>
    /// Stages <paramref name="changes"/> (from <see cref="Read"/>) on the tracked context for the caller to save with
    /// the account, and answers the names whose values differ from those stored (attributes.name, for the audit).
    /// </summary>
    public static async Task<List<string>> StageAsync(IdentityDbContext db, string userId, Dictionary<string, List<string>> changes)
    {
        if (changes.Count == 0)
            return [];
        var names = changes.Keys.ToList();
        var stored = await db.UserClaims.Where(c => c.UserId == userId && names.Contains(c.ClaimType!)).OrderBy(c => c.Id).ToListAsync();
        var changed = changes.Where(change => !stored.Where(c => c.ClaimType == change.Key).Select(c => c.ClaimValue).SequenceEqual(change.Value))
            .Select(change => change.Key).Order(StringComparer.Ordinal).ToList();
        db.UserClaims.RemoveRange(stored.Where(c => changed.Contains(c.ClaimType!)));
        db.UserClaims.AddRange(changed.SelectMany(name => changes[name].Select(value =>
            new IdentityUserClaim<string> { UserId = userId, ClaimType = name, ClaimValue = value })));
        return [.. changed.Select(name => $"attributes.{name}")];
    }

    /// <summary>How the API shows one account's attributes (from <see cref="OfAsync"/>): as a request sets them, a string or an array.</summary>
    public Dictionary<string, object> View(Dictionary<string, List<string>> stored) =>
        stored.OrderBy(a => a.Key, StringComparer.Ordinal)
            .ToDictionary(a => a.Key, a => declared[a.Key].Multivalued ? (object)a.Value : a.Value[0], StringComparer.Ordinal);

    /// <summary>
    /// Puts the account's declared attributes (stored rows of type and value) on a token's identity in place of any it
    /// had: a string claim, or for a multivalued one a JSON array, each marked with its scope for ClaimDestinations.
    /// </summary>
    public void SetClaims(ClaimsIdentity identity, IEnumerable<(string Type, string Value)> stored)
    {
        if (!Any)
            return;
        foreach (var claim in identity.Claims.Where(c => declared.ContainsKey(c.Type)).ToList())
            identity.RemoveClaim(claim);
        foreach (var group in stored.Where(s => declared.ContainsKey(s.Type)).GroupBy(s => s.Type))
        {
            var declaration = declared[group.Key];
            var claim = declaration.Multivalued
                ? new Claim(group.Key, JsonSerializer.Serialize(group.Select(s => s.Value)), Microsoft.IdentityModel.JsonWebTokens.JsonClaimValueTypes.JsonArray)
                : new Claim(group.Key, group.First().Value);
            claim.Properties[ScopeProperty] = declaration.Scope ?? "";
            identity.AddClaim(claim);
        }
    }
}
