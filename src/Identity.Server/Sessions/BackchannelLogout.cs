using System.Text.Json;
using System.Threading.Channels;
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
/// published key naming the user (sub) and the browser session (sid), POSTed from the server. Deliveries run in the
/// background, three attempts each, through the same address checks as webhooks (no private networks in production).
/// They are not kept across a restart: the sessions themselves are already revoked, which is what protects the user.
/// </summary>
public sealed class BackchannelLogout(IHttpClientFactory clients, IOptionsMonitor<OpenIddictServerOptions> server, TimeProvider time,
    ILogger<BackchannelLogout> logger) : BackgroundService
{
    public const string Property = "backchannel_logout_uri";
    public const string EventType = "http://schemas.openid.net/event/backchannel-logout";
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromMinutes(2);
    static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)];

    public sealed record Notice(Uri Uri, string Issuer, string ClientId, string Subject, string? Sid);

    // Bounded: a flood of sign-outs must not hold unbounded memory; past it the oldest notices are dropped (and logged).
    readonly Channel<Notice> queue = Channel.CreateBounded<Notice>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest });

    /// <summary>The client's back-channel logout URI, if it registered one.</summary>
    public static async Task<string?> UriOfAsync(IOpenIddictApplicationManager applications, object application) =>
        (await applications.GetPropertiesAsync(application)).TryGetValue(Property, out var uri) && uri.ValueKind == JsonValueKind.String
            ? uri.GetString()
            : null;

    /// <summary>
    /// Sends the client of <paramref name="application"/> a logout token for the session, if it asked for them; the
    /// session's sid is looked up only then, most clients asking for none.
    /// </summary>
    public async Task NotifyAsync(IOpenIddictApplicationManager applications, object application, HttpContext? http, string subject,
        Func<Task<string?>> sid)
    {
        if (await UriOfAsync(applications, application) is not { } uri || http is null)
            return;
        // OpenIddict's own rule: the configured issuer, else the request's origin and path base.
        var issuer = server.CurrentValue.Issuer?.AbsoluteUri
            ?? Microsoft.AspNetCore.Http.Extensions.UriHelper.BuildAbsolute(http.Request.Scheme, http.Request.Host, http.Request.PathBase, "/");
        queue.Writer.TryWrite(new Notice(new Uri(uri), issuer, (await applications.GetClientIdAsync(application))!, subject, await sid()));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var notice in queue.Reader.ReadAllAsync(stoppingToken))
                // Side by side: one slow receiver must not hold up the others' notices.
                _ = DeliverAsync(notice, stoppingToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task DeliverAsync(Notice notice, CancellationToken stoppingToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var client = clients.CreateClient(Webhooks.DeliverWebhooks.ClientName);
                client.Timeout = TimeSpan.FromSeconds(10);
                using var response = await client.PostAsync(notice.Uri,
                    new FormUrlEncodedContent([new("logout_token", LogoutToken(notice))]), stoppingToken);
                if (response.IsSuccessStatusCode)
                    return;
                logger.LogWarning("Back-channel logout to {Client} answered {Status}.", notice.ClientId, (int)response.StatusCode);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            // Whatever went wrong (an unreachable receiver, a refused address, a timeout), this runs unobserved: say it here.
            catch (Exception failure)
            {
                logger.LogWarning("Back-channel logout to {Client} failed: {Reason}", notice.ClientId, failure.Message);
            }
            if (attempt >= Retries.Length)
            {
                logger.LogError("Back-channel logout to {Client} for session {Sid} was given up after {Attempts} attempts.",
                    notice.ClientId, notice.Sid, attempt + 1);
                return;
            }
            await Task.Delay(Retries[attempt], time, stoppingToken);
        }
    }

    /// <summary>Discovery says so (§2.1), and that logout tokens carry the session (sid) the client saw in its identity token.</summary>
    public sealed class Advertise : IOpenIddictServerHandler<OpenIddictServerEvents.HandleConfigurationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.HandleConfigurationRequestContext>()
                .UseSingletonHandler<Advertise>()
                .SetOrder(int.MaxValue - 100_000)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.HandleConfigurationRequestContext context)
        {
            context.Metadata["backchannel_logout_supported"] = true;
            context.Metadata["backchannel_logout_session_supported"] = true;
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The logout token of §2.4: signed like identity tokens, with no nonce, and the logout event.</summary>
    string LogoutToken(Notice notice)
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
