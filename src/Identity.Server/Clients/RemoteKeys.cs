using System.Collections.Concurrent;
using System.Text.Json;
using Identity.Server.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Clients;

/// <summary>
/// private_key_jwt with the client's keys at its jwks_uri (RFC 7591 §2), as Keycloak's "JWKS URL": the client
/// publishes its public keys there and rotates them without telling this server.
/// <list type="bullet">
/// <item>Registering (clients API, RFC 7591/7592) fetches the set at once: a URL that serves no usable key set is
/// refused then, not at the first sign-in. The keys fetched are stored with the client as its last known set.</item>
/// <item>At sign-in the set is read from memory, fetched again when it is older than <see cref="CacheFor"/> or lacks
/// the key the assertion names (a rotation), at most once per <see cref="RetryAfter"/> per URL: a flood of assertions
/// with made-up key ids cannot turn the server into a request cannon.</item>
/// <item>When the URL fails, the last set fetched (or stored) keeps working, and a warning is logged.</item>
/// <item>The fetch connects to public addresses only (<see cref="OutboundAddresses"/>; Identity:ClientKeys:AllowPrivateNetworks,
/// on in Development), over https unless private networks are allowed, follows no redirect, waits 5 s and reads 64 KiB at most.</item>
/// </list>
/// </summary>
public sealed class RemoteKeys(IHttpClientFactory clients, TimeProvider time, ILogger<RemoteKeys> logger, IConfiguration configuration,
    IHostEnvironment environment)
{
    /// <summary>The client's property that holds its jwks_uri.</summary>
    public const string Property = "jwks_uri";
    public const string ClientName = "client-jwks";
    public const string AllowPrivateNetworksSetting = "Identity:ClientKeys:AllowPrivateNetworks";
    public static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5), RetryAfter = TimeSpan.FromSeconds(10);
    const int MaxBytes = 64 * 1024, MaxUris = 10_000;

    /// <summary>The set last fetched (null if none yet), when, and when a sign-in last asked for it to be fetched again.</summary>
    sealed record Entry(JsonWebKeySet? Keys, DateTimeOffset FetchedAt, DateTimeOffset RefreshedAt);

    readonly ConcurrentDictionary<string, Entry> byUri = new(StringComparer.Ordinal);

    /// <summary>The fetch under way for a URL, which sign-ins that need it wait for.</summary>
    readonly ConcurrentDictionary<string, Lazy<Task>> inflight = new(StringComparer.Ordinal);

    public bool AllowPrivateNetworks { get; } = configuration.GetValue<bool?>(AllowPrivateNetworksSetting) ?? environment.IsDevelopment();

    /// <summary>A client's jwks_uri, or null when its keys are its own (jwks) or it has none.</summary>
    public static async Task<string?> UriOfAsync(IOpenIddictApplicationManager applications, object application, CancellationToken cancellationToken = default) =>
        (await applications.GetPropertiesAsync(application, cancellationToken)).TryGetValue(Property, out var uri) && uri.ValueKind == JsonValueKind.String
            ? uri.GetString()
            : null;

    /// <summary>Why <paramref name="uri"/> cannot be a jwks_uri here, or null.</summary>
    public string? ProblemWithUri(string uri) =>
        OutboundAddresses.ProblemWithUrl(uri, AllowPrivateNetworks, "jwks_uri") ??
        (!AllowPrivateNetworks && !uri.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? "jwks_uri must be an https URL." : null);

    /// <summary>
    /// The key set at <paramref name="uri"/>, checked as registered keys are; refused with the reason, also when the
    /// address is one this server does not fetch from (<see cref="ProblemWithUri"/>), whoever asks.
    /// </summary>
    public async Task<JsonWebKeySet> FetchAsync(string uri, CancellationToken cancellationToken)
    {
        if (ProblemWithUri(uri) is { } problem)
            throw new InvalidClientException("jwks_uri", problem.TrimEnd('.'));
        // A bound, not an eviction policy: past it (self-registered apps by the thousand) every set is fetched afresh once.
        if (byUri.Count >= MaxUris)
            byUri.Clear();
        string json;
        try
        {
            using var client = clients.CreateClient(ClientName);
            using var response = await client.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
                throw new InvalidClientException("jwks_uri", $"'{uri}' answered {(int)response.StatusCode}, not a key set");
            if (response.Content.Headers.ContentLength > MaxBytes)
                throw new InvalidClientException("jwks_uri", $"the key set at '{uri}' is larger than {MaxBytes} bytes");
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[MaxBytes + 1];
            var length = 0;
            for (int read; length < buffer.Length && (read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0;)
                length += read;
            if (length > MaxBytes)
                throw new InvalidClientException("jwks_uri", $"the key set at '{uri}' is larger than {MaxBytes} bytes");
            json = System.Text.Encoding.UTF8.GetString(buffer, 0, length);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new InvalidClientException("jwks_uri", $"the key set at '{uri}' could not be fetched ({e.Message.TrimEnd('.')})");
        }
        var keys = ClientRegistration.PublicSigningKeys(json, "jwks_uri");
        byUri.AddOrUpdate(uri, _ => new Entry(keys, time.GetUtcNow(), DateTimeOffset.MinValue), (_, entry) => entry with { Keys = keys, FetchedAt = time.GetUtcNow() });
        return keys;
    }

    /// <summary>The set last fetched from <paramref name="uri"/> by this instance, if any.</summary>
    public JsonWebKeySet? Current(string uri) => byUri.TryGetValue(uri, out var entry) ? entry.Keys : null;

    /// <summary>
    /// Fetches the set again if it is old or lacks <paramref name="kid"/>, unless it was tried within
    /// <see cref="RetryAfter"/>; a failure keeps the set there was. Sign-ins that arrive while a fetch is under way wait
    /// for that one, so a burst of them during a rotation costs the client's site one request and all succeed.
    /// </summary>
    public async ValueTask RefreshAsync(string uri, JsonWebKeySet? stored, string? kid)
    {
        var entry = byUri.GetValueOrDefault(uri);
        var keys = entry?.Keys ?? stored;
        var stale = entry?.Keys is null || time.GetUtcNow() - entry.FetchedAt >= CacheFor || (kid is not null && keys?.Keys.Any(k => k.Kid == kid) != true);
        if (stale)
            await inflight.GetOrAdd(uri, _ => new Lazy<Task>(() => RefreshOnceAsync(uri))).Value;
    }

    /// <summary>
    /// Before a JWT the client signed is checked against its keys (a client assertion, a request object): for a client
    /// with a jwks_uri, its set refreshed when needed (<see cref="RefreshAsync"/>); nothing for one with its own keys.
    /// </summary>
    public async ValueTask RefreshForAsync(IOpenIddictApplicationManager applications, object application, string? kid, CancellationToken cancellationToken)
    {
        if (await UriOfAsync(applications, application, cancellationToken) is { } uri)
            await RefreshAsync(uri, await applications.GetJsonWebKeySetAsync(application, cancellationToken), string.IsNullOrEmpty(kid) ? null : kid);
    }

    async Task RefreshOnceAsync(string uri)
    {
        try
        {
            var now = time.GetUtcNow();
            if (byUri.TryGetValue(uri, out var entry) && now - entry.RefreshedAt < RetryAfter)
                return;
            byUri.AddOrUpdate(uri, _ => new Entry(null, DateTimeOffset.MinValue, now), (_, old) => old with { RefreshedAt = now });
            // Not the caller's token: others wait on this fetch, and the client's timeout bounds it.
            await FetchAsync(uri, CancellationToken.None);
        }
        catch (Exception e)
        {
            // Whatever went wrong, sign-ins go on with the keys known; an assertion they do not verify is refused.
            logger.LogWarning("The key set at {JwksUri} could not be refreshed, the last one known stays in use: {Reason}", uri, e.Message);
        }
        finally
        {
            inflight.TryRemove(uri, out _);
        }
    }

    /// <summary>
    /// Before OpenIddict checks a client assertion against the client's keys: a client with a jwks_uri gets its set
    /// refreshed first when needed, so a key it has just rotated in is known by the time the signature is checked.
    /// </summary>
    public sealed class BeforeAssertion(RemoteKeys remote, IOpenIddictApplicationManager applications) : IOpenIddictServerHandler<ProcessAuthenticationContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .UseScopedHandler<BeforeAssertion>()
            .SetOrder(OpenIddictServerHandlers.ValidateClientAssertion.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ProcessAuthenticationContext context)
        {
            if (string.IsNullOrEmpty(context.ClientAssertion))
                return;
            JsonWebToken assertion;
            try
            {
                assertion = new JsonWebToken(context.ClientAssertion);
            }
            catch (ArgumentException)
            {
                return; // OpenIddict refuses it next, with the OAuth error.
            }
            // Its issuer is the client (RFC 7523 §3); OpenIddict checks that, and finds the client's keys the same way.
            if (!string.IsNullOrEmpty(assertion.Issuer) && await applications.FindByClientIdAsync(assertion.Issuer, context.CancellationToken) is { } application)
                await remote.RefreshForAsync(applications, application, assertion.Kid, context.CancellationToken);
        }
    }
}
