using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Identity.Server.Hosting;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Connect;

/// <summary>
/// The server's DPoP nonces (RFC 9449 §8, §9), asked for with Identity:Tokens:RequireDPoPNonce. A proof must then
/// carry a nonce this server handed out (in a DPoP-Nonce response header) within the last <see cref="Lifetime"/>,
/// so a proof cannot be signed ahead of time on a clock the client controls, which is all iat and jti rule out alone.
/// A nonce is the time it was made and an HMAC of it under a key derived from keys/private-tokens.key: nothing is
/// stored, and every instance that shares the keys folder accepts the nonces of the others, as Duende IdentityServer
/// makes its nonces from a protected timestamp.
/// </summary>
public sealed class DPoPNonces(SigningKeys keys, TokenOptions options, TimeProvider time)
{
    public const string Header = "DPoP-Nonce";

    /// <summary>How long a nonce is taken: a client keeps using the last one it got, and each answer brings a fresh one.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    const int StampLength = sizeof(long), MacLength = 16;

    // A key of its own, so a nonce can never be taken for anything else the private-token key protects.
    readonly byte[] key = HKDF.DeriveKey(HashAlgorithmName.SHA256, keys.PrivateTokenKey, 32, info: Encoding.ASCII.GetBytes("identity dpop nonce"));

    public bool Required => options.RequireDPoPNonce;

    /// <summary>When nonces are required, hands the client a fresh one for its next proof (whatever this answer is).</summary>
    public void Offer(HttpResponse response)
    {
        if (Required)
            response.Headers[Header] = Issue();
    }

    public string Issue()
    {
        Span<byte> nonce = stackalloc byte[StampLength + MacLength];
        BinaryPrimitives.WriteInt64BigEndian(nonce, time.GetUtcNow().ToUnixTimeSeconds());
        Mac(nonce[..StampLength], nonce[StampLength..]);
        return Base64UrlEncoder.Encode(nonce.ToArray());
    }

    /// <summary>A nonce this server (or another instance with the same keys) made, and not older than <see cref="Lifetime"/>.</summary>
    public bool IsValid(string? nonce)
    {
        if (string.IsNullOrEmpty(nonce) || nonce.Length > 64)
            return false;
        byte[] bytes;
        try
        {
            bytes = Base64UrlEncoder.DecodeBytes(nonce);
        }
        catch (FormatException)
        {
            return false;
        }
        if (bytes.Length != StampLength + MacLength)
            return false;
        Span<byte> expected = stackalloc byte[MacLength];
        Mac(bytes.AsSpan(0, StampLength), expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, bytes.AsSpan(StampLength)))
            return false;
        var age = time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(BinaryPrimitives.ReadInt64BigEndian(bytes));
        // A second ahead: another instance's clock.
        return age >= TimeSpan.FromSeconds(-1) && age <= Lifetime;
    }

    void Mac(ReadOnlySpan<byte> stamp, Span<byte> destination)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, stamp, mac);
        mac[..MacLength].CopyTo(destination);
    }
}
