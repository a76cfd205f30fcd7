using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace Identity.Server.Connect;

/// <summary>
/// Client secrets stay PBKDF2 hashes at rest, as OpenIddict stores them; checking one costs milliseconds of CPU,
/// which would cap client_credentials at a few hundred tokens a second. A secret that verified against a stored
/// hash is remembered for a few minutes as an HMAC (under a key that lives only in this process) of the pair, so
/// its next presentations cost one HMAC. Only successes are remembered: a wrong secret always pays the full hash.
/// A rotated secret has a new stored hash, so the old pair no longer matches anything.
/// </summary>
public sealed class VerifiedSecrets(TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    const int MaxEntries = 10_000;

    readonly byte[] key = RandomNumberGenerator.GetBytes(32);
    readonly ConcurrentDictionary<string, DateTimeOffset> verified = new(StringComparer.Ordinal);

    public bool Contains(string secret, string storedHash) =>
        verified.TryGetValue(Fingerprint(secret, storedHash), out var expires) && expires > time.GetUtcNow();

    public void Add(string secret, string storedHash)
    {
        // A bound, not an eviction policy: past it (never, with a sane number of clients) everyone re-verifies once.
        if (verified.Count >= MaxEntries)
            verified.Clear();
        verified[Fingerprint(secret, storedHash)] = time.GetUtcNow() + Lifetime;
    }

    string Fingerprint(string secret, string storedHash) =>
        Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(storedHash + "\n" + secret)));
}

/// <summary>
/// OpenIddict's application manager, with <see cref="VerifiedSecrets"/> in front of the PBKDF2 check, a rotated
/// client's previous secret accepted until its grace period ends (<see cref="Clients.PreviousSecret"/>), the shared
/// <see cref="ClientSnapshots"/> emptied once a client is deleted (OpenIddict tells its cache just before), and a
/// client's keys read from its jwks_uri as last fetched (<see cref="Clients.RemoteKeys"/>) rather than as stored.
/// </summary>
public sealed class ApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store,
    VerifiedSecrets verified,
    ClientSnapshots snapshots,
    Clients.RemoteKeys remoteKeys,
    TimeProvider time)
    : OpenIddictApplicationManager<TApplication>(cache, logger, options, store) where TApplication : class
{
    public override async ValueTask DeleteAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        await base.DeleteAsync(application, cancellationToken);
        snapshots.Clear();
    }

    public override async ValueTask<Microsoft.IdentityModel.Tokens.JsonWebKeySet?> GetJsonWebKeySetAsync(TApplication application,
        CancellationToken cancellationToken = default)
    {
        var stored = await base.GetJsonWebKeySetAsync(application, cancellationToken);
        return stored is not null && await Clients.RemoteKeys.UriOfAsync(this, application, cancellationToken) is { } uri && remoteKeys.Current(uri) is { } fetched
            ? fetched
            : stored;
    }

    public override async ValueTask<bool> ValidateClientSecretAsync(TApplication application, string secret, CancellationToken cancellationToken = default) =>
        await base.ValidateClientSecretAsync(application, secret, cancellationToken) ||
        await Clients.PreviousSecret.OfAsync(this, application, cancellationToken) is { } previous && previous.ExpiresAt > time.GetUtcNow() &&
        await ValidateClientSecretAsync(secret, previous.Hash, cancellationToken);

    protected override async ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default)
    {
        if (verified.Contains(secret, comparand))
            return true;
        if (!await base.ValidateClientSecretAsync(secret, comparand, cancellationToken))
            return false;
        verified.Add(secret, comparand);
        return true;
    }
}
