using System.Security.Cryptography;
using System.Text;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>A PKCE pair (RFC 7636, S256), made the way a client app makes it.</summary>
public static class Pkce
{
    public static (string Verifier, string Challenge) New()
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        return (verifier, Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
