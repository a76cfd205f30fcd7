using System.Text.Json;
using System.Threading.Channels;
using Identity.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Sessions;

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0: when a session of a client that registered a backchannel_logout_uri ends
/// (the user signed out, or it was ended through the API), the client gets a logout token, a JWT signed with the
/// published key naming the user (sub) and the browser session (sid), POSTed from the server, through the same
/// address checks as webhooks (no private networks in production). Notices wait in the database (LogoutNotices) until
/// delivered: a new one is sent at once, a failed one is tried again later, up to five attempts over about 13 minutes,
/// and a restart or a crash loses none. Several instances share the table: each claims the notices it sends.
/// </summary>
public sealed class BackchannelLogout(IServiceScopeFactory scopes, IHttpClientFactory clients, IOptionsMonitor<OpenIddictServerOptions> server,
    TimeProvider time, ILogger<BackchannelLogout> logger) : BackgroundService
{
    public const string Property = "backchannel_logout_uri";
    public const string EventType = "http://schemas.openid.net/event/backchannel-logout";
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromMinutes(2);

    /// <summary>The waits after each failed attempt; past the last one the notice is given up.</summary>
    static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(10)];

    /// <summary>How often due retries are looked for when no new notice wakes the sender.</summary>
    static readonly TimeSpan Poll = TimeSpan.FromSeconds(2);

    /// <summary>How long a claimed notice stays hidden from other instances; due again after it if its sender died.</summary>
    static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);

    readonly Channel<bool> wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>
    /// The iss of the tokens this request's sign-out concerns, by OpenIddict's own rule: the configured issuer, else
    /// the request's origin and path base. Logout tokens and front-channel logout pages name it.
    /// </summary>
    public static string IssuerOf(HttpContext http, OpenIddictServerOptions server) =>
        server.Issuer?.AbsoluteUri
        ?? Microsoft.AspNetCore.Http.Extensions.UriHelper.BuildAbsolute(http.Request.Scheme, http.Request.Host, http.Request.PathBase, "/");

    /// <summary>The client's back-channel logout URI, if it registered one.</summary>
    public static async Task<string?> UriOfAsync(IOpenIddictApplicationManager applications, object application) =>
        (await applications.GetPropertiesAsync(application)).TryGetValue(Property, out var uri) && uri.ValueKind == JsonValueKind.String
            ? uri.GetString()
            : null;

    /// <summary>
    /// Stores a notice for the client of <paramref name="application"/> about the session, if it asked for them, and
    /// wakes the sender; the session's sid is looked up only then, most clients asking for none.
    /// </summary>
    public async Task NotifyAsync(IdentityDbContext db, IOpenIddictApplicationManager applications, object application, HttpContext? http,
        string subject, Func<Task<string?>> sid)
    {
        if (await UriOfAsync(applications, application) is not { } uri || http is null)
            return;
        var issuer = IssuerOf(http, server.CurrentValue);
        db.LogoutNotices.Add(new LogoutNotice
        {
            ClientId = (await applications.GetClientIdAsync(application))!, Uri = uri, Issuer = issuer, Subject = subject, Sid = await sid(),
            NextAttemptAt = time.GetUtcNow(),
        });
        await db.SaveChangesAsync();
        wake.Writer.TryWrite(true);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // One wait for a new notice at a time, kept across rounds: a fresh one each round would pile up in a quiet channel.
        Task<bool>? woken = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await DeliverDueAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            // The database away for a moment: the notices are still there for the next round.
            catch (Exception failure)
            {
                logger.LogError(failure, "Back-channel logout notices could not be read or updated; trying again shortly.");
            }
            woken ??= wake.Reader.WaitToReadAsync(stoppingToken).AsTask();
            await Task.WhenAny(woken, Task.Delay(Poll, time, stoppingToken));
            if (woken.IsCompleted)
            {
                woken = null;
                wake.Reader.TryRead(out _);
            }
        }
    }

    async Task DeliverDueAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDbContext>();
        var now = time.GetUtcNow();
        var due = await db.LogoutNotices.Where(n => n.NextAttemptAt <= now).OrderBy(n => n.Id).Take(100).ToListAsync(cancellationToken);
        // Each claimed by a conditional update, so another instance polling the same table sends none of these twice.
        var mine = new List<LogoutNotice>();
        foreach (var notice in due)
            if (await db.LogoutNotices.Where(n => n.Id == notice.Id && n.NextAttemptAt == notice.NextAttemptAt)
                    .ExecuteUpdateAsync(set => set.SetProperty(n => n.NextAttemptAt, now + Lease), cancellationToken) == 1)
                mine.Add(notice);
        if (mine.Count == 0)
            return;

        // Side by side: one slow receiver must not hold up the others' notices.
        var delivered = await Task.WhenAll(mine.Select(notice => SendAsync(notice, cancellationToken)));
        foreach (var (notice, ok) in mine.Zip(delivered))
        {
            notice.Attempts++;
            if (ok)
                db.LogoutNotices.Remove(notice);
            else if (notice.Attempts > Retries.Length)
            {
                logger.LogError("Back-channel logout to {Client} for session {Sid} was given up after {Attempts} attempts.",
                    notice.ClientId, notice.Sid, notice.Attempts);
                db.LogoutNotices.Remove(notice);
            }
            else
                notice.NextAttemptAt = time.GetUtcNow() + Retries[notice.Attempts - 1];
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    async Task<bool> SendAsync(LogoutNotice notice, CancellationToken cancellationToken)
    {
        try
        {
            using var client = clients.CreateClient(Webhooks.DeliverWebhooks.ClientName);
            client.Timeout = TimeSpan.FromSeconds(10);
            using var response = await client.PostAsync(notice.Uri, new FormUrlEncodedContent([new("logout_token", LogoutToken(notice))]), cancellationToken);
            if (response.IsSuccessStatusCode)
                return true;
            logger.LogWarning("Back-channel logout to {Client} answered {Status}.", notice.ClientId, (int)response.StatusCode);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        // Whatever went wrong (an unreachable receiver, a refused address, a timeout): tried again later.
        catch (Exception failure)
        {
            logger.LogWarning("Back-channel logout to {Client} failed: {Reason}", notice.ClientId, failure.Message);
        }
        return false;
    }

    /// <summary>The logout token of §2.4: signed like identity tokens, with no nonce, and the logout event.</summary>
    string LogoutToken(LogoutNotice notice)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object>
        {
            [Claims.Subject] = notice.Subject,
            [Claims.JwtId] = Guid.NewGuid().ToString("N"),
            ["events"] = new Dictionary<string, object> { [EventType] = new Dictionary<string, object>() },
        };
        if (notice.Sid is not null)
            claims[Connect.ClaimDestinations.SessionId] = notice.Sid;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = notice.Issuer,
            Audience = notice.ClientId,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + TokenLifetime,
            TokenType = "logout+jwt",
            Claims = claims,
            // The published key (RSA or ECDSA), never the secret key that seals this server's own tokens.
            SigningCredentials = server.CurrentValue.SigningCredentials.First(c => c.Key is AsymmetricSecurityKey),
        });
    }
}
