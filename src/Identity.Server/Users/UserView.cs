using Identity.Server.Data;
using Identity.Server.Roles;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Users;

/// <summary>
/// How the API shows an account: the seed's user object, the same on every endpoint, with the declared user attributes
/// (<see cref="UserAttributes"/>) it has.
/// </summary>
public sealed record UserView(
    string Id, string? Email, string? Name, IReadOnlyList<string> Roles, IReadOnlyList<string> Permissions,
    OrganizationView? Organization, bool EmailVerified, bool Active, DateTimeOffset? LastLogin, DateTimeOffset CreatedAt, bool PasswordChangeRequired,
    IReadOnlyDictionary<string, object> Attributes)
{
    public static async Task<UserView> OfAsync(IdentityDbContext db, UserAttributes attributes, User user) => (await OfAsync(db, attributes, [user]))[0];

    /// <summary>Several accounts in four queries, whatever their number.</summary>
    public static async Task<IReadOnlyList<UserView>> OfAsync(IdentityDbContext db, UserAttributes attributes, IReadOnlyList<User> users)
    {
        var ids = users.Select(u => u.Id).ToList();
        var roles = await (
            from userRole in db.UserRoles
            join role in db.Roles on userRole.RoleId equals role.Id
            where ids.Contains(userRole.UserId)
            select new { userRole.UserId, role.Id, role.Name }).ToListAsync();
        var roleIds = roles.Select(r => r.Id).Distinct().ToList();
        var permissions = await db.RoleClaims
            .Where(c => roleIds.Contains(c.RoleId) && c.ClaimType == Identity.Server.Roles.Permissions.ClaimType)
            .Select(c => new { c.RoleId, c.ClaimValue }).ToListAsync();
        var organizationIds = users.Select(u => u.OrganizationId).OfType<string>().Distinct().ToList();
        var organizations = await db.Organizations.Where(o => organizationIds.Contains(o.Id)).ToDictionaryAsync(o => o.Id);
        var stored = await attributes.OfAsync(db, ids);

        return users.Select(user =>
        {
            var mine = roles.Where(r => r.UserId == user.Id).ToList();
            var granted = permissions.Where(p => mine.Any(r => r.Id == p.RoleId)).Select(p => p.ClaimValue!);
            var organization = user.OrganizationId is { } id && organizations.TryGetValue(id, out var o) ? new OrganizationView(o.Id, o.Domain, o.Name) : null;
            return new UserView(user.Id, user.Email, user.Name,
                mine.Select(r => r.Name!).Order(StringComparer.Ordinal).ToList(),
                granted.Distinct().Order(StringComparer.Ordinal).ToList(),
                organization, user.EmailConfirmed, Accounts.IsActive(user), user.LastLoginAt, user.CreatedAt, user.PasswordChangeRequired,
                attributes.View(stored[user.Id]));
        }).ToList();
    }
}

public sealed record OrganizationView(string Id, string Domain, string Name);
