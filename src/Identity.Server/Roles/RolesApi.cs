using System.Security.Claims;
using System.Text.RegularExpressions;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Roles;

public static partial class RolesApi
{
    public sealed record RoleView(string Id, string Name, string? Description, IReadOnlyList<string> Permissions, bool OrganizationScoped);
    public sealed record RoleList(IReadOnlyList<RoleView> Roles);
    public sealed record RoleResponse(RoleView Role);
    public sealed record CreateRoleRequest(string? Name, string? Description, List<string>? Permissions);
    public sealed record UpdateRoleRequest(string? Description, List<string>? Permissions);
    public sealed record PermissionView(string Name, string Description);
    public sealed record PermissionList(IReadOnlyList<PermissionView> Permissions);

    [GeneratedRegex("^[a-z][a-z0-9_:.-]{1,63}$")]
    private static partial Regex RoleName();

    public static IEndpointRouteBuilder MapRolesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").WithTags("Roles and permissions").RequireAuthorization(ServerApi.Policy);
        api.MapGet("/roles", List).RequirePermission(Permissions.RolesRead).WithSummary("List roles with their permissions");
        api.MapPost("/roles", Create).RequirePermission(Permissions.RolesWrite).WithSummary("Create a role");
        api.MapPut("/roles/{id}", Update).RequirePermission(Permissions.RolesWrite)
            .WithSummary("Change a role's description or permissions; its holders' next tokens show it");
        api.MapDelete("/roles/{id}", Delete).RequirePermission(Permissions.RolesWrite).WithSummary("Delete a role; its holders lose it");
        api.MapGet("/permissions", (HttpContext _) => Results.Ok(new PermissionList(
                Permissions.Catalogue.Select(p => new PermissionView(p.Key, p.Value)).ToList())))
            .RequirePermission(Permissions.RolesRead).WithSummary("The permission catalogue");
        return app;
    }

    static async Task<IResult> List(IdentityDbContext db)
    {
        var roles = await db.Roles.AsNoTracking().OrderBy(r => r.Name).ToListAsync();
        var grants = await db.RoleClaims.AsNoTracking().Where(c => c.ClaimType == Permissions.ClaimType).ToListAsync();
        return Results.Ok(new RoleList(roles.Select(r => View(r, grants.Where(g => g.RoleId == r.Id).Select(g => g.ClaimValue!))).ToList()));
    }

    static async Task<IResult> Create(HttpContext http, CreateRoleRequest body, Caller caller, RoleManager<Role> roles, SecurityEvents events)
    {
        var name = body.Name?.Trim();
        if (name is null || !RoleName().IsMatch(name))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "name must be 2-64 characters: lowercase letters, digits, and _ : . -", new { field = "name" });
        if (FreeText.Problem(body.Description, "description", 1024, multiline: true) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem, new { field = "description" });
        var permissions = (body.Permissions ?? []).Distinct(StringComparer.Ordinal).ToList();
        if (UnknownPermissions(http, permissions) is { } unknown)
            return unknown;
        // A role may grant only what its creator holds globally: roles:write alone does not make anyone an admin.
        if (!caller.CanGrant(permissions, organizationScoped: false))
            return CannotGrant(http);
        if (await roles.RoleExistsAsync(name))
            return ApiErrors.Result(http, 409, "CONFLICT", $"A role named '{name}' exists.", new { field = "name" });

        var role = new Role(name) { Description = body.Description };
        // Stored with the role: a new role is a new bundle of power, and the log must show who made it.
        await events.RaiseAsync(EventTypes.RoleCreated, null, new { role = name, permissions });
        var created = await roles.CreateAsync(role);
        foreach (var permission in permissions)
            if (created.Succeeded)
                created = await roles.AddClaimAsync(role, new Claim(Permissions.ClaimType, permission));
        if (!created.Succeeded)
            return Refused(http, created);
        return Results.Created($"/api/v1/roles/{role.Id}", new RoleResponse(View(role, permissions)));
    }

    /// <summary>
    /// Changing a role changes what everyone holding it can do, so the caller must hold every permission of the role
    /// both before and after. Built-in roles keep the meaning the server gives them.
    /// </summary>
    static async Task<IResult> Update(HttpContext http, string id, UpdateRoleRequest body, Caller caller, IdentityDbContext db, RoleManager<Role> roles,
        SecurityEvents events)
    {
        var (role, before, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (role is null)
            return refusal!;
        if (FreeText.Problem(body.Description, "description", 1024, multiline: true) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem, new { field = "description" });
        var after = body.Permissions?.Distinct(StringComparer.Ordinal).ToList() ?? before;
        if (UnknownPermissions(http, after) is { } unknown)
            return unknown;
        if (!caller.CanGrant(after, role.OrganizationScoped))
            return CannotGrant(http);

        var changed = new List<string>();
        if (body.Description is not null && body.Description != role.Description)
        {
            role.Description = body.Description;
            changed.Add("description");
        }
        if (!after.ToHashSet().SetEquals(before))
        {
            db.RoleClaims.RemoveRange(await db.RoleClaims.Where(c => c.RoleId == role.Id && c.ClaimType == Permissions.ClaimType && !after.Contains(c.ClaimValue!)).ToListAsync());
            db.RoleClaims.AddRange(after.Except(before).Select(p => new IdentityRoleClaim<string> { RoleId = role.Id, ClaimType = Permissions.ClaimType, ClaimValue = p }));
            changed.Add("permissions");
        }
        if (changed.Count == 0)
            return Results.Ok(new RoleResponse(View(role, before)));

        // One save: the description, the permissions and the event together.
        await events.RaiseAsync(EventTypes.RoleUpdated, null, new { role = role.Name, changed, permissions = after.Order(StringComparer.Ordinal) });
        var updated = await roles.UpdateAsync(role);
        return updated.Succeeded ? Results.Ok(new RoleResponse(View(role, after)))
            : Refused(http, updated);
    }

    static async Task<IResult> Delete(HttpContext http, string id, Caller caller, IdentityDbContext db, RoleManager<Role> roles, SecurityEvents events)
    {
        var (role, permissions, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (role is null)
            return refusal!;
        // Each holder loses the role: a role.removed for each (with the roles they keep), beside the role.deleted.
        var holders = await db.Users.AsNoTracking().Where(u => db.UserRoles.Any(ur => ur.UserId == u.Id && ur.RoleId == role.Id)).ToListAsync();
        var held = await NamesOfAsync(db, [.. holders.Select(h => h.Id)]);
        // The assignments and permissions go with the role (cascade), in the same save as the events.
        await events.RaiseAsync(EventTypes.RoleDeleted, null, new { role = role.Name, permissions, holders = holders.Count });
        foreach (var holder in holders)
            await events.RaiseAsync(EventTypes.RoleRemoved, SecurityEvents.Subject.Of(holder) with { Roles = [.. held[holder.Id].Where(r => r != role.Name)] },
                new { role = role.Name, reason = "role_deleted" });
        var deleted = await roles.DeleteAsync(role);
        return deleted.Succeeded ? Results.NoContent()
            : Refused(http, deleted);
    }

    /// <summary>The role and its permissions, if the caller may change it: not built in, and no permission the caller lacks.</summary>
    static async Task<(Role? Role, List<string> Permissions, IResult? Refusal)> FindChangeableAsync(HttpContext http, IdentityDbContext db, Caller caller,
        string id)
    {
        var role = await FindAsync(db, id);
        if (role is null)
            return (null, [], ApiErrors.NotFound(http));
        if (BuiltInRoles.All.Any(b => b.Name == role.Name))
            return (null, [], ApiErrors.Result(http, 403, "FORBIDDEN", $"'{role.Name}' is a built-in role; it cannot be changed or deleted.", new { reason = "built_in" }));
        var permissions = await PermissionsOfAsync(db, role.Id);
        return caller.CanGrant(permissions, role.OrganizationScoped) ? (role, permissions, null) : (null, [], CannotGrant(http));
    }

    /// <summary>A role by id or by name.</summary>
    internal static Task<Role?> FindAsync(IdentityDbContext db, string idOrName) =>
        db.Roles.FirstOrDefaultAsync(r => r.Id == idOrName || r.Name == idOrName);

    /// <summary>The names of the roles each of <paramref name="userIds"/> holds, in one query.</summary>
    internal static async Task<ILookup<string, string>> NamesOfAsync(IdentityDbContext db, IReadOnlyCollection<string> userIds) =>
        (await (from link in db.UserRoles
                where userIds.Contains(link.UserId)
                join role in db.Roles on link.RoleId equals role.Id
                select new { link.UserId, role.Name }).ToListAsync())
            .ToLookup(r => r.UserId, r => r.Name!);

    internal static Task<List<string>> PermissionsOfAsync(IdentityDbContext db, string roleId) =>
        db.RoleClaims.Where(c => c.RoleId == roleId && c.ClaimType == Permissions.ClaimType).Select(c => c.ClaimValue!).ToListAsync();

    static IResult? UnknownPermissions(HttpContext http, IEnumerable<string> permissions) =>
        permissions.Where(p => !Permissions.Catalogue.ContainsKey(p)).ToList() is { Count: > 0 } unknown
            ? ApiErrors.Result(http, 400, "INVALID_REQUEST", "Unknown permissions.", new { field = "permissions", unknown })
            : null;

    /// <summary>What RoleManager refused: a lost race with another change of the role is a conflict, anything else the caller's error.</summary>
    static IResult Refused(HttpContext http, IdentityResult result) => ApiErrors.IsConflict(result)
        ? ApiErrors.Conflict(http)
        : ApiErrors.Result(http, 400, "INVALID_REQUEST", string.Join(" ", result.Errors.Select(e => e.Description)));

    static IResult CannotGrant(HttpContext http) =>
        ApiErrors.Result(http, 403, "FORBIDDEN", "A role can grant only permissions you hold.", new { field = "permissions" });

    static RoleView View(Role role, IEnumerable<string> permissions) =>
        new(role.Id, role.Name!, role.Description, permissions.Order(StringComparer.Ordinal).ToList(), role.OrganizationScoped);
}
