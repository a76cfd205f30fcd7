using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Hosting;

/// <summary>
/// Random values handed out once and presented back (an mfa_token, an external sign-in's state): 256 bits,
/// base64url, and stored only as their SHA-256, so a copy of the database cannot present them.
/// </summary>
public static class OneTimeTokens
{
    public static string New() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));

    public static string Digest(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
