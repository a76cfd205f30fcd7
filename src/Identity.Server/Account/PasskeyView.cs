using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Account;

/// <summary>
/// A passkey as the passkeys page and the users API show it: its id is its WebAuthn credential id (base64url), which
/// tells nothing about the key; the public key itself is never shown.
/// </summary>
public sealed record PasskeyView(string Id, string Name, DateTimeOffset CreatedAt, bool BackedUp)
{
    public static string IdOf(UserPasskeyInfo passkey) => WebEncoders.Base64UrlEncode(passkey.CredentialId);

    public static PasskeyView Of(UserPasskeyInfo passkey) => new(IdOf(passkey), passkey.Name ?? "Passkey", passkey.CreatedAt, passkey.IsBackedUp);

    /// <summary>
    /// How Identity's passkey calls report a browser answer that is the browser's mistake, not the server's: garbled, or
    /// posted without the challenge Identity keeps in its cookie (expired, used, never asked for), which it reports as
    /// InvalidOperationException. The pages refuse such an answer as they refuse a wrong passkey.
    /// </summary>
    public static bool IsUnreadableAnswer(Exception e) =>
        e is System.Text.Json.JsonException or PasskeyException or FormatException or InvalidOperationException;
}
