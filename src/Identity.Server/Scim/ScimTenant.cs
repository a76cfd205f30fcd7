using Identity.Server.Data;
using Identity.Server.Organizations;
using Identity.Server.Roles;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Scim;

/// <summary>
/// What the calling SCIM client may reach: the whole server, or one organization (a tenant's own directory, client
/// setting ScimOrganization). A tenant's directory sees and provisions only users at its domain and its own groups,
/// and cannot change an account that holds server-wide roles: otherwise any tenant could deactivate or take over the
/// server's administrators who happen to share its domain. Anything out of reach answers 404, as if it did not exist.
/// </summary>
public sealed record ScimTenant(string? OrganizationId, string? Domain)
{
    public bool ServerWide => Domain is null;

    public static async Task<ScimTenant> OfAsync(HttpContext http)
    {
        if (http.Items[typeof(ScimTenant)] is ScimTenant known)
            return known;
        var applications = http.RequestServices.GetRequiredService<IOpenIddictApplicationManager>();
        var application = http.User.GetClaim(Claims.ClientId) is { } clientId ? await applications.FindByClientIdAsync(clientId) : null;
        if (application is null)
            throw new ScimException(403, null, "The token's client no longer exists.");
        var tenant = new ScimTenant(null, null);
        if (await ScimApi.OrganizationOfAsync(applications, application) is { } domain)
        {
            // A tenant's first provisioning may come before any of its users registered: its organization starts here.
            var organization = await Membership.ForEmailAsync(http.RequestServices.GetRequiredService<IdentityDbContext>(), "scim@" + domain);
            tenant = new ScimTenant(organization!.Id, domain);
        }
        http.Items[typeof(ScimTenant)] = tenant;
        return tenant;
    }

    public bool Reaches(User user) => ServerWide || user.OrganizationId == OrganizationId;

    public bool Reaches(Group group) => ServerWide || group.OrganizationId == OrganizationId;

    /// <summary>A tenant's directory provisions addresses at its own domain only.</summary>
    public void CheckAddress(string email)
    {
        if (!ServerWide && Membership.OrganizationDomain(email) != Domain)
            throw new ScimException(400, ScimErrors.InvalidValue, $"userName must be an address at {Domain}: this directory provisions that organization only.");
    }

    /// <summary>Refuses (403) a tenant's change to an account with a server-wide role beyond user.</summary>
    public async Task CheckChangeableAsync(IdentityDbContext db, User user)
    {
        if (!ServerWide && await db.UserRoles.Where(ur => ur.UserId == user.Id)
                .Join(db.Roles, ur => ur.RoleId, r => r.Id, (_, r) => r)
                .AnyAsync(r => !r.OrganizationScoped && r.Name != BuiltInRoles.User))
            throw new ScimException(403, null, "This account holds server-wide roles: only a server-wide directory may change it.");
    }
}
