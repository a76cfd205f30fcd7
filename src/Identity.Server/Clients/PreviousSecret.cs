using System.Text.Json;
using OpenIddict.Abstractions;

namespace Identity.Server.Clients;

/// <summary>
/// A secret rotated with a grace period (Keycloak's "rotated secret expiration", Duende's secrets with expirations):
/// the replaced secret keeps working until then, so every instance of the client can take up the new one without an
/// outage. Only its PBKDF2 hash is kept, as for the current secret, beside the client; one rotation replaces it.
/// </summary>
public static class PreviousSecret
{
    public const string Property = "previous_client_secret";

    /// <summary>The longest a replaced secret may go on working: long enough to roll out a new one, not to forget the old.</summary>
    public static readonly TimeSpan LongestGrace = TimeSpan.FromDays(7);

    public sealed record Entry(string Hash, DateTimeOffset ExpiresAt);

    /// <summary>The replaced secret of the client, if one was kept (expired or not).</summary>
    public static async ValueTask<Entry?> OfAsync(IOpenIddictApplicationManager applications, object application, CancellationToken cancellationToken = default) =>
        (await applications.GetPropertiesAsync(application, cancellationToken)).TryGetValue(Property, out var value) && value.ValueKind == JsonValueKind.Object
            ? value.Deserialize<Entry>()
            : null;

    /// <summary>Keeps <paramref name="hash"/> (the secret being replaced) working until <paramref name="expiresAt"/>, or drops any kept one.</summary>
    public static void Set(OpenIddictApplicationDescriptor descriptor, string? hash, DateTimeOffset expiresAt)
    {
        if (hash is null)
            descriptor.Properties.Remove(Property);
        else
            descriptor.Properties[Property] = JsonSerializer.SerializeToElement(new Entry(hash, expiresAt));
    }

    /// <summary>A change of the client's other settings keeps its replaced secret as it was.</summary>
    public static void Keep(OpenIddictApplicationDescriptor stored, OpenIddictApplicationDescriptor updated)
    {
        if (stored.Properties.TryGetValue(Property, out var value))
            updated.Properties[Property] = value;
    }
}
