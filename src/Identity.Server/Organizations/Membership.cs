using System.Collections.Frozen;
using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Organizations;

/// <summary>Multi-tenancy by email domain: a user belongs to the organization of their email's domain.</summary>
public static class Membership
{
    // Addresses here belong to individuals, not to a company: they form no organization.
    static readonly FrozenSet<string> FreeMail = new[]
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com", "ymail.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de",
        "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru", "mail.ru", "zoho.com", "tutanota.com", "fastmail.com",
        "hey.com", "qq.com", "163.com", "126.com", "naver.com", "orange.fr", "free.fr", "laposte.net", "libero.it",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    public static string? OrganizationDomain(string email)
    {
        var at = email.LastIndexOf('@');
        var domain = at < 0 ? "" : email[(at + 1)..].Trim().ToLowerInvariant();
        return domain.Length == 0 || FreeMail.Contains(domain) ? null : domain;
    }

    /// <summary>Finds or creates the organization of <paramref name="email"/>; null for free-mail.</summary>
    public static async Task<Organization?> ForEmailAsync(IdentityDbContext db, string email)
    {
        if (OrganizationDomain(email) is not { } domain)
            return null;

        var existing = await db.Organizations.FirstOrDefaultAsync(o => o.Domain == domain);
        if (existing is not null)
            return existing;

        var created = new Organization { Domain = domain, Name = domain };
        db.Organizations.Add(created);
        try
        {
            await db.SaveChangesAsync();
            return created;
        }
        catch (DbUpdateException)
        {
            // Two first users of a domain at once: the unique index let one create it; use that one.
            db.Entry(created).State = EntityState.Detached;
            return await db.Organizations.FirstAsync(o => o.Domain == domain);
        }
    }
}
