using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Sessions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// The refresh tokens of a sign-in have no rows: their session records the one that may still be redeemed, as Keycloak
/// keeps the current refresh token on its client session. A refresh token carries its id (<see cref="IdClaim"/>),
/// and redeeming it swaps the session's record for the next token's id in one conditional UPDATE, which also requires
/// the session not to have ended. That single write replaces OpenIddict's three statements per refresh (read the
/// token's row, mark it redeemed, insert the next one) and half a refresh's CPU.
/// <list type="bullet">
/// <item>Rotation and reuse detection are as before: a refresh token works once. Presented again (by a thief or the
/// client it was stolen from) it no longer matches the session's record, so the session ends, with every token of it,
/// and token.reuse_detected is raised (RFC 9700 4.14.2). Two concurrent uses of one token: the database lets one
/// UPDATE match, the other is reuse.</item>
/// <item>Introspection checks the record too: a spent token is inactive. Revoking one, spent or not, ends its
/// session (<see cref="Check"/>).</item>
/// <item>A refresh token from a token exchange keeps its row: it belongs to another client than its session.</item>
/// <item>Refresh tokens issued by earlier versions have rows and are redeemed by OpenIddict, as before.</item>
/// </list>
/// </summary>
public static class SessionRefreshTokens
{
    /// <summary>The private claim naming a refresh token to its session; refresh tokens are only read by this server.</summary>
    public const string IdClaim = "rt_id";

    const string NextIdProperty = ".identity_next_refresh_token_id";

    /// <summary>This sign-in redeemed a refresh token against its session, which recorded the time of use.</summary>
    public static bool RecordedUseIn(OpenIddictServerTransaction transaction) => transaction.GetProperty<string>(NextIdProperty) is not null;

    static string NewId() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));

    /// <summary>The session and id of a refresh token without a row, redeemed against its session's record.</summary>
    static (string Session, string Id)? OfSession(System.Security.Claims.ClaimsPrincipal? principal) =>
        principal is not null && principal.GetTokenId() is null && principal.GetClaim(IdClaim) is { } id && principal.GetAuthorizationId() is { } session
            ? (session, id)
            : null;

    /// <summary>Gives a sign-in's refresh token an id recorded on its session, in place of a row.</summary>
    public sealed class Issue(IdentityDbContext db) : IOpenIddictServerHandler<GenerateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
            .UseScopedHandler<Issue>()
            .SetOrder(OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(GenerateTokenContext context)
        {
            if (context.TokenType != TokenTypeIdentifiers.RefreshToken || context.Principal.GetAuthorizationId() is not { } session ||
                context.Request?.IsTokenExchangeGrantType() == true)
                return;

            // Redeeming the previous token already recorded this one's id. A new sign-in records its first here, and so
            // does one whose previous refresh token had a row (an earlier version's).
            if (context.Transaction.GetProperty<string>(NextIdProperty) is not { } id)
            {
                id = NewId();
                // The lifetime OpenIddict gave the token (remember me, the client's, the server's), which each refresh keeps.
                var lifetime = context.Principal.GetExpirationDate() - context.Principal.GetCreationDate();
                // Sessions/RecordSession has made the record by now; were it missing, the token keeps a row and still works.
                if (await db.Sessions.Where(s => s.AuthorizationId == session).ExecuteUpdateAsync(s => s
                        .SetProperty(x => x.RefreshTokenId, id).SetProperty(x => x.RefreshTokenLifetime, lifetime)) == 0)
                    return;
            }
            context.Principal.SetClaim(IdClaim, id);
            context.CreateTokenEntry = false;
        }
    }

    /// <summary>
    /// Redeems the presented refresh token at the token endpoint: early in the sign-in, where OpenIddict redeems a
    /// token's row, so that nothing is issued on a token that is spent or whose session has ended.
    /// </summary>
    public sealed class Redeem(IdentityDbContext db, TimeProvider time,
        IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, SecurityEvents events) : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseScopedHandler<Redeem>()
            .SetOrder(OpenIddictServerHandlers.RedeemTokenEntry.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ProcessSignInContext context)
        {
            if (context.EndpointType != OpenIddictServerEndpointType.Token || !context.Request.IsRefreshTokenGrantType())
                return;
            var presented = context.Transaction.GetProperty<ProcessAuthenticationContext>(typeof(ProcessAuthenticationContext).FullName!)?.RefreshTokenPrincipal;
            if (OfSession(presented) is not var (session, current))
                return;

            var next = NewId();
            // The time of use is recorded in the same write, so Sessions/RecordSession has nothing left to do.
            var statement = RedeemStatement.For(db);
            if (await db.Database.ExecuteSqlRawAsync(statement.Sql, next, statement.LastUsedAt(time.GetUtcNow()), session, current) == 1)
            {
                context.Transaction.SetProperty(NextIdProperty, next);
                return;
            }

            // Spent while its session is still valid: someone else holds a copy. The session ends, as RFC 9700 asks.
            if (await authorizations.FindByIdAsync(session) is { } authorization && await authorizations.HasStatusAsync(authorization, Statuses.Valid))
            {
                await ReportTokenReuse.ReportAsync(events, authorizations, presented!.GetClaim(Claims.Subject), TokenTypeIdentifiers.RefreshToken,
                    session, context.Request.ClientId);
                // The session's rows (its code, identity tokens): OpenIddict revokes them when a token with a row is reused.
                await tokens.RevokeByAuthorizationIdAsync(session);
            }
            context.Reject(Errors.InvalidGrant, "The refresh token is no longer valid.");
        }
    }

    /// <summary>
    /// The redeem as SQL, written once per database provider from the model (table and column names, quoting, the
    /// timestamp's stored form): swap the session's record from the presented token's id to the next one's, and stamp
    /// the time of use, only if the record still names the presented token and the session is valid. EF Core would
    /// translate the same UPDATE from LINQ on every refresh (a twelfth of a refresh's CPU), and cannot compile one.
    /// </summary>
    sealed record RedeemStatement(string Sql, Func<DateTimeOffset, object> LastUsedAt)
    {
        static readonly ConcurrentDictionary<Type, RedeemStatement> ByContext = new();

        public static RedeemStatement For(IdentityDbContext db) =>
            ByContext.TryGetValue(db.GetType(), out var statement) ? statement : ByContext.GetOrAdd(db.GetType(), _ => Write(db));

        static RedeemStatement Write(IdentityDbContext db)
        {
            var sql = db.GetService<ISqlGenerationHelper>();
            var sessions = db.Model.FindEntityType(typeof(SessionInfo))!;
            var authorizations = db.Model.FindEntityType(typeof(OpenIddictEntityFrameworkCoreAuthorization))!;
            string Table(IEntityType type) => sql.DelimitIdentifier(type.GetTableName()!, type.GetSchema());
            string Column(IEntityType type, string property) => sql.DelimitIdentifier(type.FindProperty(property)!.GetColumnName());
            var lastUsed = sessions.FindProperty(nameof(SessionInfo.LastUsedAt))!.GetTypeMapping().Converter;

            return new(
                $"UPDATE {Table(sessions)} SET {Column(sessions, nameof(SessionInfo.RefreshTokenId))} = {{0}}, " +
                $"{Column(sessions, nameof(SessionInfo.LastUsedAt))} = {{1}} " +
                $"WHERE {Column(sessions, nameof(SessionInfo.AuthorizationId))} = {{2}} AND {Column(sessions, nameof(SessionInfo.RefreshTokenId))} = {{3}} " +
                $"AND EXISTS (SELECT 1 FROM {Table(authorizations)} WHERE {Column(authorizations, nameof(OpenIddictEntityFrameworkCoreAuthorization.Id))} = {{2}} " +
                $"AND {Column(authorizations, nameof(OpenIddictEntityFrameworkCoreAuthorization.Status))} = '{Statuses.Valid}')",
                lastUsed is null ? at => at : at => lastUsed.ConvertToProvider(at)!);
        }
    }

    /// <summary>
    /// Everywhere else a refresh token is read, its session must still be valid (OpenIddict checks that once it knows
    /// the session), and at introspection it must be the session's current one: a spent token is inactive. Revocation
    /// takes a spent token too: it is the sign-in's, and revoking it ends the sign-in, which is what its holder asks.
    /// </summary>
    public sealed class Check(IdentityDbContext db) : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<Check>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateAuthorizationEntry.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ValidateTokenContext context)
        {
            // At the token endpoint Redeem checks both, atomically, with the write it has to make anyway.
            if (context.IsRejected || context.EndpointType == OpenIddictServerEndpointType.Token || OfSession(context.Principal) is not var (session, id))
                return;
            if (context.EndpointType != OpenIddictServerEndpointType.Revocation &&
                await db.Sessions.AsNoTracking().Where(s => s.AuthorizationId == session).Select(s => s.RefreshTokenId).FirstOrDefaultAsync() != id)
            {
                context.Reject(Errors.InvalidToken, "The refresh token is no longer valid.");
                return;
            }
            context.AuthorizationId = session;
        }
    }
}
