using Identity.Server.Data;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Sessions;

/// <summary>
/// A sign-in's OpenIddict authorization is its session: when it is created this records where it came from, and
/// later tokens issued from it mark it used. A refresh needs nothing from here: redeeming the refresh token against
/// the session's record already wrote the time of use (Connect/SessionRefreshTokens), in the write it makes anyway.
/// </summary>
public sealed class RecordSession(IdentityDbContext db, TimeProvider time) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
        .UseScopedHandler<RecordSession>()
        .SetOrder(OpenIddictServerHandlers.AttachAuthorization.Descriptor.Order + 1_000)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.Principal?.GetAuthorizationId() is not { } id || context.Principal.GetClaim(OpenIddictConstants.Claims.Subject) is not { } subject ||
            Connect.SessionRefreshTokens.RecordedUseIn(context.Transaction))
            return;

        var now = time.GetUtcNow();
        var session = await db.Sessions.FindAsync(id);
        if (session is null)
        {
            var http = context.Transaction.GetHttpRequest()?.HttpContext;
            var userAgent = http?.Request.Headers.UserAgent.ToString();
            db.Sessions.Add(new SessionInfo
            {
                AuthorizationId = id, UserId = subject, ClientId = context.Request?.ClientId, CreatedAt = now, LastUsedAt = now,
                AuthenticatedAt = Connect.PrincipalFactory.AuthenticatedAt(context.Principal),
                Sid = context.Principal.GetClaim(Connect.ClaimDestinations.SessionId),
                Ip = http?.Connection.RemoteIpAddress?.ToString(),
                UserAgent = string.IsNullOrEmpty(userAgent) ? null : userAgent[..Math.Min(userAgent.Length, 512)],
            });
        }
        else
            session.LastUsedAt = now;
        await db.SaveChangesAsync();
    }
}
