using System.Net.Mail;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Organizations;
using Identity.Server.Roles;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Server.Users;

/// <summary>
/// /api/v1/users: accounts and their roles. Every rule is a permission; organization admins reach only their own
/// organization's users, and anyone else's answers 404 exactly as a missing user does.
/// </summary>
public static class UsersApi
{
    /// <summary>
    /// temporary_password: the password must be changed at the next password sign-in (Keycloak's "Temporary").
    /// attributes: declared user attributes (<see cref="UserAttributes"/>), each a string or an array of strings; on
    /// update, the ones named are replaced (null removes one) and the others stay.
    /// </summary>
    public sealed record CreateUserRequest(string? Email, string? Password, string? Name, List<string>? Roles, bool? EmailVerified, bool? TemporaryPassword = null,
        Dictionary<string, System.Text.Json.JsonElement>? Attributes = null);
    public sealed record UpdateUserRequest(string? Email, string? Name, bool? EmailVerified, string? Password, bool? Active, bool? TemporaryPassword = null,
        Dictionary<string, System.Text.Json.JsonElement>? Attributes = null);
    public sealed record AssignRoleRequest(string? RoleId);
    public sealed record UserResponse(UserView User);
    public sealed record UserPage(IReadOnlyList<UserView> Users, int Total, int Page, int Limit);
    public sealed record PasskeyList(IReadOnlyList<Account.PasskeyView> Passkeys);

    public static IEndpointRouteBuilder MapUsersApi(this IEndpointRouteBuilder app)
    {
        var users = app.MapGroup("/api/v1/users").WithTags("Users").RequireAuthorization(ServerApi.Policy);
        users.MapGet("/", List).RequirePermission(Permissions.UsersRead).WithSummary("List users (page, limit, search, role)");
        users.MapGet("/{id}", Get).RequirePermission(Permissions.UsersRead).WithSummary("A user");
        users.MapPost("/", Create).RequirePermission(Permissions.UsersWrite).WithSummary("Create a user");
        users.MapPut("/{id}", Update).RequirePermission(Permissions.UsersWrite)
            .WithSummary("Change a user; a new password or active: false ends all of the user's sessions");
        users.MapDelete("/{id}", Delete).RequirePermission(Permissions.UsersWrite).WithSummary("Delete a user and revoke their tokens");
        users.MapPost("/{id}/roles", AssignRole).RequirePermission(Permissions.UsersWrite).WithSummary("Give a user a role");
        users.MapDelete("/{id}/roles/{roleId}", RemoveRole).RequirePermission(Permissions.UsersWrite).WithSummary("Take a role from a user");
        users.MapDelete("/{id}/mfa", ResetMfa).RequirePermission(Permissions.UsersWrite).WithSummary("Reset a user's MFA (lost authenticator)");
        users.MapGet("/{id}/passkeys", Passkeys).RequirePermission(Permissions.UsersRead).WithSummary("A user's passkeys");
        users.MapDelete("/{id}/passkeys/{passkeyId}", RemovePasskey).RequirePermission(Permissions.UsersWrite)
            .WithSummary("Remove a user's passkey (a lost or stolen device)");
        return app;
    }

    static async Task<IResult> List(HttpContext http, Caller caller, IdentityDbContext db, UserAttributes attributes, string? page, string? limit, string? search, string? role)
    {
        if (!Paging.TryRead(page, limit, out var pageNumber, out var pageSize, out var problem))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem!.Value.Message, new { field = problem.Value.Field });

        var query = db.Users.AsNoTracking();
        if (!caller.Global.Contains(Permissions.UsersRead))
            query = query.Where(u => u.OrganizationId != null && u.OrganizationId == caller.OrganizationId);
        if (!string.IsNullOrWhiteSpace(search))
        {
            var term = search.Trim().ToLower();
            query = query.Where(u => u.Email!.ToLower().Contains(term) || (u.Name != null && u.Name.ToLower().Contains(term)));
        }
        if (!string.IsNullOrWhiteSpace(role))
            query = query.Where(u => db.UserRoles.Any(ur => ur.UserId == u.Id && db.Roles.Any(r => r.Id == ur.RoleId && (r.Name == role || r.Id == role))));

        var total = await query.CountAsync();
        var items = await query.OrderBy(u => u.CreatedAt).ThenBy(u => u.Id).Skip((pageNumber - 1) * pageSize).Take(pageSize).ToListAsync();
        return Results.Ok(new UserPage(await UserView.OfAsync(db, attributes, items), total, pageNumber, pageSize));
    }

    static async Task<IResult> Get(HttpContext http, string id, Caller caller, IdentityDbContext db, UserAttributes attributes)
    {
        var user = await FindReachableAsync(db, caller, Permissions.UsersRead, id);
        return user is null ? ApiErrors.NotFound(http) : Results.Ok(new UserResponse(await UserView.OfAsync(db, attributes, user)));
    }

    static async Task<IResult> Create(HttpContext http, CreateUserRequest body, Caller caller, IdentityDbContext db, UserAttributes attributes, UserManager<User> users,
        SecurityEvents events)
    {
        var email = body.Email?.Trim();
        if (email is null || !MailAddress.TryCreate(email, out var address) || address.Address != email)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "A valid email is required.", new { field = "email" });
        if (string.IsNullOrEmpty(body.Password))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "A password is required.", new { field = "password" });
        if (FreeText.Problem(body.Name, "name", 256) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem, new { field = "name" });
        var (attributeChanges, attributeProblem, attributeField) = attributes.Read(body.Attributes);
        if (attributeProblem is not null)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", attributeProblem, new { field = attributeField });
        if (attributeChanges.Count > 0 && !caller.Global.Contains(Permissions.UsersWrite))
            return AttributesAreForAdministrators(http);

        // An organization admin creates accounts in their own organization only.
        var organizationDomain = Membership.OrganizationDomain(email);
        if (!caller.Global.Contains(Permissions.UsersWrite) &&
            (organizationDomain is null || !await db.Organizations.AnyAsync(o => o.Id == caller.OrganizationId && o.Domain == organizationDomain)))
            return ApiErrors.Result(http, 403, "FORBIDDEN", "You can create accounts in your own organization only.", new { field = "email" });

        var roles = new List<Role>();
        foreach (var requested in body.Roles ?? [])
        {
            var role = await RolesApi.FindAsync(db, requested);
            if (role is null)
                return ApiErrors.Result(http, 400, "INVALID_REQUEST", $"There is no role '{requested}'.", new { field = "roles" });
            if (!await caller.CanGrantAsync(db, role))
                return CannotGrant(http, role);
            roles.Add(role);
        }

        var user = new User { Email = email, Name = body.Name?.Trim(), EmailConfirmed = body.EmailVerified ?? false, PasswordChangeRequired = body.TemporaryPassword == true };
        var created = await Accounts.CreateAsync(users, db, events, user, body.Password, roles.Select(r => r.Name!));
        if (!created.Succeeded)
            return Accounts.Problem(http, created);
        await UserAttributes.StageAsync(db, user.Id, attributeChanges);
        await db.SaveChangesAsync();
        return Results.Created($"/api/v1/users/{user.Id}", new UserResponse(await UserView.OfAsync(db, attributes, user)));
    }

    static async Task<IResult> Update(HttpContext http, string id, UpdateUserRequest body, Caller caller, IdentityDbContext db, UserAttributes attributes, UserManager<User> users,
        SecurityEvents events, Sessions.SessionStore sessions)
    {
        var (user, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (user is null)
            return refusal!;
        if (FreeText.Problem(body.Name, "name", 256) is { } problem)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", problem, new { field = "name" });
        var (attributeChanges, attributeProblem, attributeField) = attributes.Read(body.Attributes);
        if (attributeProblem is not null)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", attributeProblem, new { field = attributeField });
        if (attributeChanges.Count > 0 && !caller.Global.Contains(Permissions.UsersWrite))
            return AttributesAreForAdministrators(http);

        if (body.Email is { } newEmail && !string.Equals(newEmail.Trim(), user.Email, StringComparison.OrdinalIgnoreCase))
        {
            newEmail = newEmail.Trim();
            if (!MailAddress.TryCreate(newEmail, out var address) || address.Address != newEmail)
                return ApiErrors.Result(http, 400, "INVALID_REQUEST", "The email address is not valid.", new { field = "email" });
            var organization = await Membership.ForEmailAsync(db, newEmail);
            if (!caller.Reaches(Permissions.UsersWrite, organization?.Id))
                return ApiErrors.Result(http, 403, "FORBIDDEN", "You cannot move an account out of your organization.", new { field = "email" });
            user.Email = user.UserName = newEmail;
            user.OrganizationId = organization?.Id;
            user.EmailConfirmed = false;
        }
        if (body.Name is not null)
            user.Name = body.Name.Trim();
        if (body.EmailVerified is { } verified)
            user.EmailConfirmed = verified;
        // Disabling an account (Keycloak's "enabled", SCIM's active) stops every sign-in; one's own would lock oneself out.
        if (body.Active is false && Accounts.IsActive(user))
        {
            if (user.Id == caller.UserId)
                return ApiErrors.Result(http, 400, "INVALID_REQUEST", "You cannot deactivate your own account.", new { field = "active" });
            Accounts.Deactivate(user);
        }
        else if (body.Active is true && !Accounts.IsActive(user))
            Accounts.Reactivate(user);
        // An administrator's reset, for a forgotten or compromised password: final unless said to be temporary.
        if (body.Password is not null && await Accounts.ReplacePasswordAsync(users, user, body.Password) is { Succeeded: false } refused)
            return Accounts.Problem(http, refused);
        if (body.TemporaryPassword is { } temporary)
        {
            if (temporary && user.PasswordHash is null)
                return ApiErrors.Result(http, 400, "INVALID_REQUEST", "The account has no password to change.", new { field = "temporary_password" });
            user.PasswordChangeRequired = temporary;
        }

        var saved = await Accounts.SaveChangesAsync(users, db, events, sessions, user, await UserAttributes.StageAsync(db, user.Id, attributeChanges));
        return saved.Succeeded ? Results.Ok(new UserResponse(await UserView.OfAsync(db, attributes, user))) : Accounts.Problem(http, saved);
    }

    static async Task<IResult> Delete(HttpContext http, string id, Caller caller, IdentityDbContext db, UserManager<User> users,
        Sessions.SessionStore sessions, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, SecurityEvents events)
    {
        var (user, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (user is null)
            return refusal!;
        await Accounts.DeleteAsync(users, sessions, authorizations, tokens, events, user);
        return Results.NoContent();
    }

    static async Task<IResult> AssignRole(HttpContext http, string id, AssignRoleRequest body, Caller caller, IdentityDbContext db, UserAttributes attributes, UserManager<User> users,
        SecurityEvents events)
    {
        var (user, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (user is null)
            return refusal!;
        var role = string.IsNullOrWhiteSpace(body.RoleId) ? null : await RolesApi.FindAsync(db, body.RoleId);
        if (role is null)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "role_id must name an existing role.", new { field = "role_id" });
        if (!await caller.CanGrantAsync(db, role))
            return CannotGrant(http, role);

        if (!await users.IsInRoleAsync(user, role.Name!))
        {
            await events.RaiseAsync(EventTypes.RoleAssigned, SecurityEvents.Subject.Of(user) with { Roles = [.. await users.GetRolesAsync(user), role.Name!] },
                new { role = role.Name });
            var added = await users.AddToRoleAsync(user, role.Name!);
            if (!added.Succeeded)
                return Accounts.Problem(http, added);
        }
        return Results.Ok(new UserResponse(await UserView.OfAsync(db, attributes, user)));
    }

    static async Task<IResult> RemoveRole(HttpContext http, string id, string roleId, Caller caller, IdentityDbContext db, UserAttributes attributes, UserManager<User> users,
        SecurityEvents events)
    {
        var (user, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (user is null)
            return refusal!;
        var role = await RolesApi.FindAsync(db, roleId);
        if (role is null || !await users.IsInRoleAsync(user, role.Name!))
            return ApiErrors.NotFound(http);
        if (!await caller.CanGrantAsync(db, role))
            return CannotGrant(http, role);

        await events.RaiseAsync(EventTypes.RoleRemoved, SecurityEvents.Subject.Of(user) with { Roles = [.. (await users.GetRolesAsync(user)).Where(r => r != role.Name)] },
            new { role = role.Name });
        var removed = await users.RemoveFromRoleAsync(user, role.Name!);
        return removed.Succeeded ? Results.Ok(new UserResponse(await UserView.OfAsync(db, attributes, user))) : Accounts.Problem(http, removed);
    }

    static async Task<IResult> ResetMfa(HttpContext http, string id, Caller caller, IdentityDbContext db, Mfa.MultiFactor mfa)
    {
        var (user, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (user is null)
            return refusal!;
        await mfa.RemoveAsync(user);
        return Results.NoContent();
    }

    static async Task<IResult> Passkeys(HttpContext http, string id, Caller caller, IdentityDbContext db, UserManager<User> users)
    {
        var user = await FindReachableAsync(db, caller, Permissions.UsersRead, id);
        return user is null ? ApiErrors.NotFound(http)
            : Results.Ok(new PasskeyList([.. (await users.GetPasskeysAsync(user)).Select(Account.PasskeyView.Of).OrderBy(p => p.CreatedAt)]));
    }

    /// <summary>What a helpdesk does for a user who lost a device: that passkey signs nobody in any more.</summary>
    static async Task<IResult> RemovePasskey(HttpContext http, string id, string passkeyId, Caller caller, IdentityDbContext db, UserManager<User> users,
        SecurityEvents events)
    {
        var (user, refusal) = await FindChangeableAsync(http, db, caller, id);
        if (user is null)
            return refusal!;
        var passkey = (await users.GetPasskeysAsync(user)).FirstOrDefault(p => Account.PasskeyView.IdOf(p) == passkeyId);
        if (passkey is null)
            return ApiErrors.NotFound(http);
        // Raised first: the store saves the event with the removal.
        await events.RaiseAsync(EventTypes.PasskeyRemoved, SecurityEvents.Subject.Of(user), new { passkey = passkey.Name, id = passkeyId, source = "api" });
        await users.RemovePasskeyAsync(user, passkey.CredentialId);
        return Results.NoContent();
    }

    /// <summary>The user, if it exists and the caller's permission reaches its organization; else null (a 404).</summary>
    // Apps may grant access on an attribute (Keycloak's admin-only attributes): an organization admin, who may change
    // their own account, must not be able to give themselves one.
    static IResult AttributesAreForAdministrators(HttpContext http) =>
        ApiErrors.Result(http, 403, "FORBIDDEN", "Only server administrators set user attributes.", new { field = "attributes" });

    static async Task<User?> FindReachableAsync(IdentityDbContext db, Caller caller, string permission, string id)
    {
        var user = await db.Users.FindAsync(id);
        return user is not null && caller.Reaches(permission, user.OrganizationId) ? user : null;
    }

    /// <summary>
    /// The user, if the caller may change it: in reach of its users:write, and holding nothing the caller lacks (else
    /// 403: the caller may see this account, but changing it would be a way around <see cref="Caller.CanGrant"/>).
    /// </summary>
    static async Task<(User? User, IResult? Refusal)> FindChangeableAsync(HttpContext http, IdentityDbContext db, Caller caller, string id)
    {
        var user = await FindReachableAsync(db, caller, Permissions.UsersWrite, id);
        if (user is null)
            return (null, ApiErrors.NotFound(http));
        return await caller.HoldsAllOfAsync(db, user.Id)
            ? (user, null)
            : (null, ApiErrors.Result(http, 403, "FORBIDDEN", "You cannot change an account that holds permissions you do not hold."));
    }

    static IResult CannotGrant(HttpContext http, Role role) =>
        ApiErrors.Result(http, 403, "FORBIDDEN", $"You cannot grant or remove the role '{role.Name}': it has permissions you do not hold.", new { role = role.Name });

}
