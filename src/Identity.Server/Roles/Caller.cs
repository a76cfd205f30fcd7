using System.Security.Claims;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Roles;

/// <summary>
/// Who is calling an API and what they may do, read from the database on each request (so a role or permission
/// change applies at once, not at the next token). Permissions from organization-scoped roles reach only users of
/// the caller's own organization.
/// </summary>
public sealed class Caller
{
    public required string UserId { get; init; }
    public string? OrganizationId { get; init; }
    public required IReadOnlySet<string> Global { get; init; }
    public required IReadOnlySet<string> InOrganization { get; init; }

    public bool Has(string permission) => Global.Contains(permission) || InOrganization.Contains(permission);

    /// <summary>May the caller use <paramref name="permission"/> on something in <paramref name="organizationId"/>?</summary>
    public bool Reaches(string permission, string? organizationId) =>
        Global.Contains(permission) ||
        (InOrganization.Contains(permission) && OrganizationId is not null && OrganizationId == organizationId);

    /// <summary>Holds every permission of a role at a scope at least as wide as the role's: no escalation by assignment.</summary>
    public bool CanGrant(IEnumerable<string> permissions, bool organizationScoped) =>
        permissions.All(p => Global.Contains(p) || (organizationScoped && InOrganization.Contains(p)));

    /// <summary>Holds every permission <paramref name="role"/> carries (<see cref="CanGrant"/>), as stored.</summary>
    public async Task<bool> CanGrantAsync(IdentityDbContext db, Role role) =>
        CanGrant(await RolesApi.PermissionsOfAsync(db, role.Id), role.OrganizationScoped);

    /// <summary>
    /// Does the caller hold every permission <paramref name="userId"/> holds, at a scope as wide? Changing an account
    /// (its email, MFA, sessions, roles, existence) needs this on top of reaching its organization: otherwise an
    /// organization admin could re-address, reset or delete a server admin who shares its domain, and take it over.
    /// </summary>
    public async Task<bool> HoldsAllOfAsync(IdentityDbContext db, string userId) =>
        (await GrantsAsync(db, userId)).All(g => CanGrant([g.Permission], g.OrganizationScoped));

    static Task<List<(bool OrganizationScoped, string Permission)>> GrantsAsync(IdentityDbContext db, string userId) =>
        (from userRole in db.UserRoles
         join role in db.Roles on userRole.RoleId equals role.Id
         join claim in db.RoleClaims on role.Id equals claim.RoleId
         where userRole.UserId == userId && claim.ClaimType == Permissions.ClaimType
         select new ValueTuple<bool, string>(role.OrganizationScoped, claim.ClaimValue!)).ToListAsync();

    /// <summary>Minimal API binding: an endpoint that takes a Caller answers 401 for a token whose user is gone.</summary>
    public static async ValueTask<Caller?> BindAsync(HttpContext http) =>
        await LoadAsync(http.RequestServices.GetRequiredService<IdentityDbContext>(), http.User.FindFirstValue(Claims.Subject));

    public static async Task<Caller?> LoadAsync(IdentityDbContext db, string? userId)
    {
        // Org-scoped permissions reach only a verified member's organization (User.OrganizationId).
        var user = userId is null ? null : await db.Users.AsNoTracking().Where(u => u.Id == userId)
            .Select(u => new { u.Id, OrganizationId = u.EmailConfirmed ? u.OrganizationId : null }).FirstOrDefaultAsync();
        if (user is null)
            return null;

        var grants = await GrantsAsync(db, user.Id);

        return new Caller
        {
            UserId = user.Id,
            OrganizationId = user.OrganizationId,
            Global = grants.Where(g => !g.OrganizationScoped).Select(g => g.Permission).ToHashSet(StringComparer.Ordinal),
            InOrganization = grants.Where(g => g.OrganizationScoped).Select(g => g.Permission).ToHashSet(StringComparer.Ordinal),
        };
    }
}

public static class PermissionEndpoints
{
    /// <summary>The endpoint needs <paramref name="permission"/> (at some scope); 401 if the token's user is gone, else 403.</summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, string permission) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var caller = await Caller.BindAsync(http);
            if (caller is null)
                return ApiErrors.Result(http, StatusCodes.Status401Unauthorized, "UNAUTHORIZED", "The token's account no longer exists.");
            if (!caller.Has(permission))
                return ApiErrors.Result(http, StatusCodes.Status403Forbidden, "FORBIDDEN", "Insufficient permissions.", new { required = permission });
            return await next(context);
        });
}
