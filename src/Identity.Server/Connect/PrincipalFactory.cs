using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Json;
using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// The one place that builds the principal behind every token: authorization code, refresh, password and client
/// credentials all come through here, so every flow issues the same claims.
/// </summary>
public sealed class PrincipalFactory(IdentityDbContext db, ScopeResources scopeResources, TimeProvider time, Users.UserAttributes attributes)
{
    /// <summary>
    /// A new sign-in of <paramref name="user"/> with the given scopes and authentication methods (RFC 8176), through
    /// <paramref name="identityProvider"/> when an external provider vouched for the user (the idp claim), by an
    /// authentication at <paramref name="authenticatedAt"/> (the auth_time claim; now, unless a browser session's), in
    /// the browser session <paramref name="sessionId"/> (the sid claim) when there is one.
    /// </summary>
    public async Task<ClaimsPrincipal> ForUserAsync(User user, IEnumerable<string> scopes, IEnumerable<string> amr, string? identityProvider = null,
        DateTimeOffset? authenticatedAt = null, string? sessionId = null)
    {
        var identity = NewIdentity();
        identity.SetClaim(ClaimDestinations.SessionId, sessionId);
        identity.SetClaim(ClaimDestinations.IdentityProvider, identityProvider);
        identity.SetClaim(Claims.AuthenticationTime, (authenticatedAt ?? time.GetUtcNow()).ToUnixTimeSeconds());
        identity.SetScopes(scopes);
        identity.SetResources(scopeResources.For(identity.GetScopes()));
        return await WithUserClaimsAsync(identity, user, amr);
    }

    /// <summary>
    /// Reissue from a code or refresh token: OpenIddict's own claims (scopes, resources, authorization), the
    /// original authentication methods and auth_time carry over; the user's claims are read afresh so a role change shows at once.
    /// </summary>
    public Task<ClaimsPrincipal> RenewAsync(ClaimsPrincipal previous, User user) =>
        WithUserClaimsAsync(new ClaimsIdentity(previous.Claims, TokenValidationParameters.DefaultAuthenticationType, Claims.Name, ClaimDestinations.Roles),
            user, previous.GetClaims(Claims.AuthenticationMethodReference));

    /// <summary>
    /// When the user of <paramref name="principal"/> last proved who they are: its auth_time (a token's, or the browser
    /// session's), which max_age, the sign-in maximum and the recent-sign-in rule all count from; null without one.
    /// </summary>
    public static DateTimeOffset? AuthenticatedAt(ClaimsPrincipal? principal) =>
        long.TryParse(principal?.FindFirst(Claims.AuthenticationTime)?.Value, System.Globalization.NumberStyles.Integer,
            System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    /// <summary>A client acting on its own behalf (client credentials): the subject is the client.</summary>
    public static ClaimsPrincipal ForClient(ScopeResources scopeResources, string clientId, string? displayName, IEnumerable<string> scopes)
    {
        var identity = NewIdentity();
        identity.SetClaim(Claims.Subject, clientId).SetClaim(Claims.Name, displayName ?? clientId);
        identity.SetScopes(scopes);
        identity.SetResources(scopeResources.For(identity.GetScopes()));
        identity.SetDestinations(ClaimDestinations.For);
        return new ClaimsPrincipal(identity);
    }

    /// <summary>
    /// The account behind a code, refresh token or device code, to check and read claims from. A compiled query: every
    /// refresh asks for it, and UserManager's lookup (DbSet.Find) built and translated its query anew each time, a
    /// sixteenth of a refresh's CPU. Untracked: a renewal writes nothing to the account, and tracking it cost 2%.
    /// </summary>
    public Task<User?> FindUserAsync(string id) => Compiled(UserById, () => EF.CompileAsyncQuery((IdentityDbContext db, string id) =>
        db.Users.AsNoTracking().FirstOrDefault(u => u.Id == id)))(db, id);

    // A compiled query holds its first context's SQL, so each database provider (the tests run two in one process)
    // gets its own.
    static readonly ConcurrentDictionary<Type, Func<IdentityDbContext, string, Task<User?>>> UserById = new();
    static readonly ConcurrentDictionary<Type, Func<IdentityDbContext, string, string?, bool, IAsyncEnumerable<Membership>>> MembershipsById = new();

    TQuery Compiled<TQuery>(ConcurrentDictionary<Type, TQuery> queries, Func<TQuery> compile) where TQuery : class =>
        queries.TryGetValue(db.GetType(), out var query) ? query : queries.GetOrAdd(db.GetType(), _ => compile());

    const int RoleKind = 0, GroupKind = 1, OrganizationKind = 2, AttributeKind = 3;

    sealed class Membership
    {
        public int Kind { get; init; }
        public string Name { get; init; } = "";

        /// <summary>An attribute's value (its name is the Name), and its row's id, which keeps a multivalued one's values in order.</summary>
        public string? Value { get; init; }
        public int Order { get; init; }
    }

    // Roles, groups, organization and the declared attributes' values in one round trip, compiled once: every token (a
    // refresh above all) pays for this. Membership needs a verified email (User.OrganizationId): an unproven address
    // carries no org claims. Without declared attributes the last part matches nothing.
    IAsyncEnumerable<Membership> MembershipsOf(string userId, string? organizationId) => Compiled(MembershipsById, () =>
        EF.CompileAsyncQuery((IdentityDbContext db, string userId, string? organizationId, bool withAttributes) =>
            db.UserRoles.Where(ur => ur.UserId == userId)
                .Join(db.Roles, ur => ur.RoleId, r => r.Id, (_, r) => new Membership { Kind = RoleKind, Name = r.Name!, Value = null, Order = 0 })
                .Concat(db.GroupMembers.Where(m => m.UserId == userId).Join(db.Groups, m => m.GroupId, g => g.Id,
                    (_, g) => new Membership { Kind = GroupKind, Name = g.DisplayName, Value = null, Order = 0 }))
                .Concat(db.Organizations.Where(o => o.Id == organizationId).Select(o => new Membership { Kind = OrganizationKind, Name = o.Domain, Value = null, Order = 0 }))
                .Concat(db.UserClaims.Where(c => withAttributes && c.UserId == userId)
                    .Select(c => new Membership { Kind = AttributeKind, Name = c.ClaimType!, Value = c.ClaimValue, Order = c.Id }))))(db, userId, organizationId, attributes.Any);

    /// <summary>
    /// The claims read from the account at every sign-in and renewal (<see cref="WithUserClaimsAsync"/>): a renewal
    /// replaces them, so a refresh token need not carry them (<see cref="RefreshTokenClaims"/>).
    /// </summary>
    public static readonly IReadOnlyList<string> AccountClaims =
    [
        Claims.Email, Claims.EmailVerified, Claims.Name, ClaimDestinations.OrganizationId, ClaimDestinations.OrganizationDomain,
        ClaimDestinations.Roles, ClaimDestinations.Groups,
    ];

    static ClaimsIdentity NewIdentity() =>
        new(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, ClaimDestinations.Roles);

    async Task<ClaimsPrincipal> WithUserClaimsAsync(ClaimsIdentity identity, User user, IEnumerable<string> amr)
    {
        identity.SetClaim(Claims.Subject, user.Id)
            .SetClaim(Claims.Email, user.Email)
            .SetClaim(Claims.EmailVerified, user.EmailConfirmed)
            .SetClaim(Claims.Name, user.Name ?? user.Email);
        var organizationId = user.EmailConfirmed ? user.OrganizationId : null;
        var memberships = await MembershipsOf(user.Id, organizationId).ToListAsync();
        identity.SetClaim(ClaimDestinations.OrganizationId, memberships.Any(m => m.Kind == OrganizationKind) ? organizationId : null)
            .SetClaim(ClaimDestinations.OrganizationDomain, memberships.FirstOrDefault(m => m.Kind == OrganizationKind)?.Name);
        SetArray(identity, ClaimDestinations.Roles, [.. memberships.Where(m => m.Kind == RoleKind).Select(m => m.Name).Order(StringComparer.Ordinal)]);
        // Only a member of some group gets the claim: most accounts are in none, and every token would carry an empty list.
        SetArray(identity, ClaimDestinations.Groups, [.. memberships.Where(m => m.Kind == GroupKind).Select(m => m.Name).Order(StringComparer.Ordinal)],
            omitIfEmpty: true);
        attributes.SetClaims(identity, memberships.Where(m => m.Kind == AttributeKind).OrderBy(m => m.Order).Select(m => (m.Name, m.Value ?? "")));
        var methods = amr.Distinct(StringComparer.Ordinal).ToList();
        SetArray(identity, Claims.AuthenticationMethodReference, methods);
        identity.SetClaim(Claims.AuthenticationContextReference, AuthenticationContext.Of(methods));
        identity.SetDestinations(ClaimDestinations.For);
        return new ClaimsPrincipal(identity);
    }

    /// <summary>
    /// roles, groups and amr are always JSON arrays, even with one value, so consumers never find a string in their place.
    /// Identity Model writes a JSON_ARRAY claim as the array itself.
    /// </summary>
    static void SetArray(ClaimsIdentity identity, string type, IReadOnlyCollection<string> values, bool omitIfEmpty = false)
    {
        foreach (var claim in identity.FindAll(type).ToList())
            identity.RemoveClaim(claim);
        if (omitIfEmpty && values.Count == 0)
            return;
        identity.AddClaim(new Claim(type, JsonSerializer.Serialize(values), JsonClaimValueTypes.JsonArray));
    }
}
