using System.Security.Claims;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Federation;

/// <summary>Who a provider says the user is, in the same shape whichever library spoke to it.</summary>
public sealed record ExternalIdentity(string Provider, string Subject, string? Email, bool EmailVerified, string? Name)
{
    /// <summary>
    /// Reads the claims of any of the provider libraries: the ASP.NET Core handlers write ClaimTypes.*, the OpenIddict
    /// client and userinfo answers the JWT names. Null without a subject, which no account can be keyed on.
    /// </summary>
    public static ExternalIdentity? From(string provider, ClaimsPrincipal principal)
    {
        string? First(params string[] types) =>
            types.Select(t => principal.FindFirst(t)?.Value).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));

        var subject = First(ClaimTypes.NameIdentifier, Claims.Subject, "id");
        if (subject is null)
            return null;
        var email = First(ClaimTypes.Email, Claims.Email);
        var verified = bool.TryParse(First(Claims.EmailVerified), out var v) && v;
        return new(provider, subject, email?.Trim(), verified && email is not null, First(Claims.Name, ClaimTypes.Name, "login"));
    }

    /// <summary>The same, as the claims <see cref="From"/> reads back.</summary>
    public ClaimsPrincipal ToPrincipal()
    {
        var identity = new ClaimsIdentity(Provider);
        identity.AddClaim(new Claim(Claims.Subject, Subject));
        if (Email is not null)
            identity.AddClaim(new Claim(Claims.Email, Email));
        identity.AddClaim(new Claim(Claims.EmailVerified, EmailVerified ? "true" : "false"));
        if (Name is not null)
            identity.AddClaim(new Claim(Claims.Name, Name));
        return new ClaimsPrincipal(identity);
    }
}

/// <summary>
/// Finds or makes the account behind an external sign-in. An existing account is linked at once only when both
/// sides vouch for the email address, the provider and the account (a verified email); otherwise its owner must
/// prove the account is theirs (its password) first. So an address typed into some provider cannot take over an
/// account here, and an account someone registered in advance under another person's address (whose password they
/// chose) is not silently handed to that person's provider login and shared.
/// </summary>
public sealed class ExternalAccounts(UserManager<User> users, SignInManager<User> signIn, IdentityDbContext db, SecurityEvents events)
{
    public enum Outcome { SignedIn, Created, Linked, LinkRequired, NoEmail, Refused }

    public sealed record Resolution(Outcome Outcome, User? User);

    public async Task<Resolution> ResolveAsync(ExternalIdentity external)
    {
        var resolution = await FindOrCreateAsync(external);
        if (resolution.Outcome is Outcome.SignedIn or Outcome.Linked or Outcome.Created)
            await Accounts.RecordLoginAsync(db, resolution.User!);
        else
        {
            await events.RaiseNowAsync(EventTypes.AuthFailed, resolution.User is null ? null : SecurityEvents.Subject.Of(resolution.User),
                new { reason = resolution.Outcome.ToString(), provider = external.Provider }, success: false);
        }
        return resolution;
    }

    async Task<Resolution> FindOrCreateAsync(ExternalIdentity external)
    {
        var user = await users.FindByLoginAsync(external.Provider, external.Subject);
        if (user is not null)
            return await Accounts.MaySignInAsync(signIn, user) ? new(Outcome.SignedIn, user) : new(Outcome.Refused, user);

        if (string.IsNullOrEmpty(external.Email))
            return new(Outcome.NoEmail, null);

        user = await users.FindByEmailAsync(external.Email);
        if (user is not null && !(external.EmailVerified && user.EmailConfirmed))
            return new(Outcome.LinkRequired, user);
        if (user is not null)
        {
            if (!await Accounts.MaySignInAsync(signIn, user))
                return new(Outcome.Refused, user);
            await LinkAsync(user, external);
            return new(Outcome.Linked, user);
        }

        user = new User { Email = external.Email, Name = external.Name, EmailConfirmed = external.EmailVerified };
        var created = await Accounts.CreateAsync(users, db, events, user, password: null, []);
        if (!created.Succeeded)
            return new(Outcome.Refused, null);
        await LinkAsync(user, external);
        // The provider did not vouch for the address, and this server wants it proven before any sign-in.
        if (Accounts.AwaitsVerification(signIn, user))
        {
            await Account.AccountEmails.SendVerificationIfConfiguredAsync(signIn.Context, users, user);
            return new(Outcome.Refused, user);
        }
        return new(Outcome.Created, user);
    }

    /// <summary>Adds the provider's login to <paramref name="user"/>; the event commits with the link.</summary>
    public enum Unlinked { Removed, NotLinked, LastWayIn }

    /// <summary>Removes the provider's login from <paramref name="user"/>, unless it is the account's only way to sign in; audited.</summary>
    public async Task<Unlinked> UnlinkAsync(User user, string provider)
    {
        var logins = await users.GetLoginsAsync(user);
        if (logins.FirstOrDefault(l => l.LoginProvider == provider) is not { } login)
            return Unlinked.NotLinked;
        if (logins.Count == 1 && !await users.HasPasswordAsync(user))
            return Unlinked.LastWayIn;
        await events.RaiseAsync(EventTypes.LoginRemoved, SecurityEvents.Subject.Of(user), new { provider });
        var removed = await users.RemoveLoginAsync(user, login.LoginProvider, login.ProviderKey);
        if (!removed.Succeeded)
            throw new InvalidOperationException(string.Join(" ", removed.Errors.Select(e => e.Description)));
        return Unlinked.Removed;
    }

    public async Task LinkAsync(User user, ExternalIdentity external)
    {
        await events.RaiseAsync(EventTypes.LoginLinked, SecurityEvents.Subject.Of(user), new { provider = external.Provider });
        var result = await users.AddLoginAsync(user, new UserLoginInfo(external.Provider, external.Subject, external.Provider));
        if (!result.Succeeded)
            throw new InvalidOperationException(string.Join(" ", result.Errors.Select(e => e.Description)));
    }
}
