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
    public sealed record PermissionView(string Name, string Description);
    public sealed record PermissionList(IReadOnlyList<PermissionView> Permissions);

    [GeneratedRegex("^[a-z][a-z0-9_:.-]{1,63}$")]
    private static partial Regex RoleName();

    public static IEndpointRouteBuilder MapRolesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").WithTags("Roles and permissions").RequireAuthorization(ServerApi.Policy);
        api.MapGet("/roles", List).RequirePermission(Permissions.RolesRead).WithSummary("List roles with their permissions");
        api.MapPost("/roles", Create).RequirePermission(Permissions.RolesWrite).WithSummary("Create a role");
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
        var unknown = permissions.Where(p => !Permissions.Catalogue.ContainsKey(p)).ToList();
        if (unknown.Count > 0)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "Unknown permissions.", new { field = "permissions", unknown });
        // A role may grant only what its creator holds globally: roles:write alone does not make anyone an admin.
        if (!caller.CanGrant(permissions, organizationScoped: false))
            return ApiErrors.Result(http, 403, "FORBIDDEN", "A role can grant only permissions you hold.", new { field = "permissions" });
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
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", string.Join(" ", created.Errors.Select(e => e.Description)));
        return Results.Created($"/api/v1/roles/{role.Id}", new RoleResponse(View(role, permissions)));
    }

    static RoleView View(Role role, IEnumerable<string> permissions) =>
        new(role.Id, role.Name!, role.Description, permissions.Order(StringComparer.Ordinal).ToList(), role.OrganizationScoped);
}
