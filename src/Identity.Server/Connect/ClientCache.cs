using System.Collections.Concurrent;
using OpenIddict.Abstractions;
using Application = OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication;

namespace Identity.Server.Connect;

/// <summary>
/// Clients as last read from the database, shared by all requests. OpenIddict's own application cache lives for one
/// request, so every token request read its client from the database: a quarter of a client_credentials request's
/// CPU. Clients change only through OpenIddict's application manager, which tells its cache (<see cref="ClientCache"/>)
/// about every create, update and delete, and that empties this one at once; a change made by another server
/// instance is seen after <see cref="MaxAge"/>. Unknown client ids are not remembered: they always ask the database.
/// </summary>
public sealed class ClientSnapshots(TimeProvider time)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);

    sealed record Snapshot(Application Application, long Version, DateTimeOffset LoadedAt);

    readonly ConcurrentDictionary<string, Snapshot> byClientId = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, Snapshot> byId = new(StringComparer.Ordinal);
    long version;

    public long Version => Interlocked.Read(ref version);

    /// <summary>A private copy of the client, or null when it is not known or too old.</summary>
    public Application? FindByClientId(string clientId) => Fresh(byClientId, clientId);

    public Application? FindById(string id) => Fresh(byId, id);

    /// <summary>Keeps <paramref name="application"/>, read when <see cref="Version"/> was <paramref name="readAt"/>.</summary>
    public void Add(Application application, long readAt)
    {
        // A change saved while it was being read leaves the copy out of date: it is not kept.
        if (readAt != Version || application.ClientId is null)
            return;
        var snapshot = new Snapshot(Copy(application), readAt, time.GetUtcNow());
        byClientId[application.ClientId] = snapshot;
        byId[application.Id!] = snapshot;
    }

    public void Clear()
    {
        Interlocked.Increment(ref version);
        byClientId.Clear();
        byId.Clear();
    }

    Application? Fresh(ConcurrentDictionary<string, Snapshot> index, string key) =>
        index.TryGetValue(key, out var snapshot) && snapshot.Version == Version && time.GetUtcNow() - snapshot.LoadedAt < MaxAge
            ? Copy(snapshot.Application)
            : null;

    // Every caller gets its own entity: a context tracking it must never share it with another request or context.
    static Application Copy(Application a) => new()
    {
        Id = a.Id, ApplicationType = a.ApplicationType, ClientId = a.ClientId, ClientSecret = a.ClientSecret,
        ClientType = a.ClientType, ConcurrencyToken = a.ConcurrencyToken, ConsentType = a.ConsentType,
        DisplayName = a.DisplayName, DisplayNames = a.DisplayNames, JsonWebKeySet = a.JsonWebKeySet,
        Permissions = a.Permissions, PostLogoutRedirectUris = a.PostLogoutRedirectUris, Properties = a.Properties,
        RedirectUris = a.RedirectUris, Requirements = a.Requirements, Settings = a.Settings,
    };
}

/// <summary>
/// OpenIddict's application cache for this server: lookups by client id and id are answered from
/// <see cref="ClientSnapshots"/>; redirect URI lookups, rare, go to the store. A copy handed out is attached to the
/// request's database context as if it had just been read (or the instance that context already tracks is used), so
/// a client read here can be updated or deleted through the manager like one read from the store. One request asks
/// for its client several times (each validation step does), so the one it got first serves the rest of the request.
/// </summary>
public sealed class ClientCache(ClientSnapshots snapshots, IOpenIddictApplicationStore<Application> store, Data.IdentityDbContext db)
    : IOpenIddictApplicationCache<Application>
{
    Application? current;

    public ValueTask<Application?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken) =>
        current?.ClientId == identifier ? new(current)
        : Remember(snapshots.FindByClientId(identifier)) is { } application ? new(application)
        : LoadAsync(s => s.FindByClientIdAsync(identifier, cancellationToken));

    public ValueTask<Application?> FindByIdAsync(string identifier, CancellationToken cancellationToken) =>
        current?.Id == identifier ? new(current)
        : Remember(snapshots.FindById(identifier)) is { } application ? new(application)
        : LoadAsync(s => s.FindByIdAsync(identifier, cancellationToken));

    public IAsyncEnumerable<Application> FindByPostLogoutRedirectUriAsync(string uri, CancellationToken cancellationToken) =>
        store.FindByPostLogoutRedirectUriAsync(uri, cancellationToken);

    public IAsyncEnumerable<Application> FindByRedirectUriAsync(string uri, CancellationToken cancellationToken) =>
        store.FindByRedirectUriAsync(uri, cancellationToken);

    // The manager calls these around every create, update and delete of a client.
    public ValueTask AddAsync(Application application, CancellationToken cancellationToken) => Forget();

    public ValueTask RemoveAsync(Application application, CancellationToken cancellationToken) => Forget();

    ValueTask Forget()
    {
        current = null;
        snapshots.Clear();
        return ValueTask.CompletedTask;
    }

    Application? Remember(Application? application) => application is null ? null : current = Tracked(application);

    Application Tracked(Application application)
    {
        if (db.Set<Application>().Local.FindEntry(application.Id!) is { } entry)
            return entry.Entity;
        // Unchanged, as if just read; only this entity (Attach would also walk its empty navigations).
        db.Entry(application).State = Microsoft.EntityFrameworkCore.EntityState.Unchanged;
        return application;
    }

    async ValueTask<Application?> LoadAsync(Func<IOpenIddictApplicationStore<Application>, ValueTask<Application?>> find)
    {
        var readAt = snapshots.Version;
        var application = await find(store);
        if (application is not null)
            snapshots.Add(application, readAt);
        return Remember(application);
    }
}
