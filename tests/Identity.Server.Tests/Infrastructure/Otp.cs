using System.Security.Cryptography;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>RFC 6238 TOTP and RFC 4648 base32, written here from the RFCs so the tests do not trust the server's library.</summary>
public static class Otp
{
    public static string Totp(byte[] key, DateTimeOffset time, int digits = 6, int period = 30)
    {
        var counter = time.ToUnixTimeSeconds() / period;
        var message = new byte[8];
        for (var i = 7; i >= 0; i--, counter >>= 8)
            message[i] = (byte)(counter & 0xff);
        var hash = HMACSHA1.HashData(key, message);
        var offset = hash[^1] & 0x0f;
        var binary = ((hash[offset] & 0x7f) << 24) | (hash[offset + 1] << 16) | (hash[offset + 2] << 8) | hash[offset + 3];
        return (binary % (int)Math.Pow(10, digits)).ToString().PadLeft(digits, '0');
    }

    public static byte[] Base32Decode(string text)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var bits = 0;
        var value = 0;
        var output = new List<byte>();
        foreach (var c in text.TrimEnd('=').ToUpperInvariant())
        {
            value = (value << 5) | alphabet.IndexOf(c);
            bits += 5;
            if (bits >= 8)
            {
                output.Add((byte)(value >> (bits - 8)));
                bits -= 8;
            }
        }
        return [.. output];
    }

    /// <summary>The text of the QR code in a PNG, read by jsQR in node (tools/qr).</summary>
    public static string DecodeQr(string pngBase64) => NodeTools.Run("qr", "decode.mjs", input: pngBase64);
}
