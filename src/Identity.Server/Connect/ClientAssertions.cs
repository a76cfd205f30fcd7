using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;
using static OpenIddict.Server.OpenIddictServerHandlerFilters;

namespace Identity.Server.Connect;

/// <summary>
/// A JWT's jti, kept until the JWT can no longer be accepted so that it cannot be presented twice: a client
/// assertion's (RFC 7523) or a DPoP proof's (RFC 9449).
/// </summary>
public sealed class UsedClientAssertion
{
    /// <summary>SHA-256 of the jti and who signed it (a client id, a DPoP key): one signer's jti cannot block another's.</summary>
    public required string Id { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>Single use of JWT ids, in the database so that every instance and a restart see it.</summary>
public static class UsedJwtIds
{
    /// <summary>Records <paramref name="key"/> (the signer and the jti) until <paramref name="expiresAt"/>; false if it was already there.</summary>
    public static async Task<bool> TryUseAsync(IdentityDbContext db, string key, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var used = new UsedClientAssertion { Id = OneTimeTokens.Digest(key), ExpiresAt = expiresAt };
        db.Add(used);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException)
        {
            db.Entry(used).State = EntityState.Detached;
            // Only a taken key means the JWT was used before; any other failure is the database's.
            if (!await db.UsedClientAssertions.AnyAsync(a => a.Id == used.Id, cancellationToken))
                throw;
            return false;
        }
    }
}

/// <summary>
/// private_key_jwt (RFC 7523): OpenIddict checks an assertion's signature against the client's registered keys, its
/// issuer, subject, audience and lifetime. This adds what RFC 7523 §3 leaves to the server and Keycloak and Duende do:
/// each assertion is accepted once (its jti is remembered in the database until it expires, so every instance and a
/// restart see it), and it must expire within <see cref="MaxLifetime"/>, so that a leaked one is of little use and
/// the remembered jtis stay few. PruneSessions deletes the expired ones.
/// </summary>
public sealed class ClientAssertionReplay(IdentityDbContext db, TimeProvider time) : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(10);

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
        .AddFilter<RequireClientAssertionPrincipal>()
        .UseScopedHandler<ClientAssertionReplay>()
        .SetOrder(OpenIddictServerHandlers.ValidateClientAssertion.Descriptor.Order + 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        var assertion = context.ClientAssertionPrincipal!;
        var jti = assertion.GetClaim(Claims.JwtId);
        var expires = assertion.GetExpirationDate();
        if (string.IsNullOrEmpty(jti) || expires is null)
        {
            context.Reject(Errors.InvalidClient, "The client assertion must carry jti and exp.");
            return;
        }
        if (expires > time.GetUtcNow() + MaxLifetime)
        {
            context.Reject(Errors.InvalidClient, $"The client assertion must expire within {MaxLifetime.TotalMinutes:0} minutes.");
            return;
        }

        if (!await UsedJwtIds.TryUseAsync(db, assertion.GetClaim(Claims.Subject) + "\n" + jti, expires.Value, context.CancellationToken))
            context.Reject(Errors.InvalidClient, "This client assertion was already used: sign a new one for each request.");
    }
}

/// <summary>
/// A client assertion OpenIddict refuses in its token checks (wrong audience, type, signature) is answered with their
/// error, invalid_token, which RFC 6749 §5.2 does not have for these endpoints; RFC 7521 §4.2.1 asks for
/// invalid_client, which is what client libraries look for to know the client's credentials are at fault.
/// </summary>
public sealed class ClientAssertionFailure : IOpenIddictServerHandler<ProcessErrorContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessErrorContext>()
        .UseSingletonHandler<ClientAssertionFailure>()
        .SetOrder(OpenIddictServerHandlers.AttachErrorParameters.Descriptor.Order - 1)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(ProcessErrorContext context)
    {
        if (context.Error == Errors.InvalidToken && !string.IsNullOrEmpty(context.Request?.ClientAssertion))
            context.Error = Errors.InvalidClient;
        return ValueTask.CompletedTask;
    }
}
