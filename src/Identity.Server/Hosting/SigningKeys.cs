using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Hosting;

public sealed class KeyOptions
{
    public const string Section = "Identity:Keys";

    /// <summary>Folder of the signing and encryption certificates, relative to the content root.</summary>
    public string Path { get; set; } = "keys";

    /// <summary>Algorithm of the key that signs tokens: RS256 (default) or ES256. Both keys are published in the JWKS.</summary>
    public string SigningAlgorithm { get; set; } = SecurityAlgorithms.RsaSha256;
}

/// <summary>
/// Loads the server's certificates from <see cref="KeyOptions.Path"/>, generating self-signed ones on first run.
/// Operators replace the files with their own certificates (PKCS#12, no password) and keep the folder private.
/// </summary>
public sealed class SigningKeys
{
    public required X509Certificate2 Rsa { get; init; }
    public required X509Certificate2 Ecdsa { get; init; }
    public required X509Certificate2 Encryption { get; init; }

    /// <summary>
    /// The key of the audit log's hash chain (HMAC-SHA256): kept here, outside the database, so that someone who can
    /// write to the database cannot recompute the chain after changing it.
    /// </summary>
    public required byte[] AuditKey { get; init; }

    /// <summary>This start created <see cref="AuditKey"/>: entries linked before (unkeyed, or under a lost key) must be relinked.</summary>
    public bool AuditKeyCreated { get; init; }

    /// <summary>
    /// 64 random bytes: an HMAC-SHA256 key and an AES-256 key wrap key (32 bytes each) that protect the tokens only this
    /// server ever reads back: refresh tokens and authorization codes (see Connect/PrivateTokenProtection).
    /// </summary>
    public required byte[] PrivateTokenKey { get; init; }

    public SigningCredentials PrivateTokenSigning => privateTokenSigning ??=
        new(new SymmetricSecurityKey(PrivateTokenKey[..32]) { KeyId = KeyIdOf(PrivateTokenKey[..32]) }, SecurityAlgorithms.HmacSha256);

    public EncryptingCredentials PrivateTokenEncryption => privateTokenEncryption ??=
        new(new SymmetricSecurityKey(PrivateTokenKey[32..]) { KeyId = KeyIdOf(PrivateTokenKey[32..]) },
            SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512);

    SigningCredentials? privateTokenSigning;
    EncryptingCredentials? privateTokenEncryption;

    /// <summary>Names a secret key in token headers by a hash of it, which tells nothing about a 256-bit random key.</summary>
    static string KeyIdOf(byte[] key) => Convert.ToHexString(SHA256.HashData(key).AsSpan(0, 8));

    public static SigningKeys LoadOrCreate(string folder, ILogger? logger = null)
    {
        Directory.CreateDirectory(folder);
        var auditKey = System.IO.Path.Combine(folder, "audit-chain.key");
        var auditKeyCreated = !File.Exists(auditKey);
        if (auditKeyCreated)
            WriteNew(auditKey, RandomNumberGenerator.GetBytes(32));
        var privateTokenKey = System.IO.Path.Combine(folder, "private-tokens.key");
        if (!File.Exists(privateTokenKey))
            WriteNew(privateTokenKey, RandomNumberGenerator.GetBytes(64));
        return new SigningKeys
        {
            AuditKey = File.ReadAllBytes(auditKey),
            AuditKeyCreated = auditKeyCreated,
            PrivateTokenKey = ReadKey(privateTokenKey, 64),
            Rsa = LoadOrCreate(System.IO.Path.Combine(folder, "signing-rsa.pfx"), X509KeyUsageFlags.DigitalSignature, logger),
            Ecdsa = LoadOrCreate(System.IO.Path.Combine(folder, "signing-ecdsa.pfx"), X509KeyUsageFlags.DigitalSignature, logger, ecdsa: true),
            Encryption = LoadOrCreate(System.IO.Path.Combine(folder, "encryption-rsa.pfx"), X509KeyUsageFlags.KeyEncipherment, logger),
        };
    }

    static X509Certificate2 LoadOrCreate(string file, X509KeyUsageFlags usage, ILogger? logger, bool ecdsa = false)
    {
        if (!File.Exists(file))
        {
            var subject = new X500DistinguishedName("CN=Identity development " + System.IO.Path.GetFileNameWithoutExtension(file));
            using var key = ecdsa ? (AsymmetricAlgorithm)ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
            var request = key is ECDsa ec
                ? new CertificateRequest(subject, ec, HashAlgorithmName.SHA256)
                : new CertificateRequest(subject, (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, critical: true));
            using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(2));

            WriteNew(file, created.Export(X509ContentType.Pkcs12));
            logger?.LogWarning("Generated a self-signed development key {File}; provide your own certificates in production.", file);
        }
        return X509CertificateLoader.LoadPkcs12FromFile(file, password: null, X509KeyStorageFlags.EphemeralKeySet);
    }

    static byte[] ReadKey(string file, int length)
    {
        var key = File.ReadAllBytes(file);
        return key.Length == length ? key
            : throw new InvalidOperationException($"{file} must hold exactly {length} bytes, not {key.Length}; delete it to have a new one generated.");
    }

    /// <summary>Written to a temporary name first, so a crash never leaves half a key behind; readable by this user only.</summary>
    static void WriteNew(string file, byte[] content)
    {
        var temp = file + ".tmp";
        File.WriteAllBytes(temp, content);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, file, overwrite: false);
    }

    /// <summary>
    /// Publishes both signing keys and encrypts with the encryption certificate. OpenIddict signs with the first
    /// signing credential after sorting them (secret keys first, then certificates), so the chosen algorithm and the
    /// encryption certificate are moved to the front once OpenIddict has sorted: both public keys stay in the JWKS,
    /// only the chosen one signs what others read. The secret keys sign and encrypt only the tokens this server
    /// alone reads back (Connect/PrivateTokenProtection), and are never published.
    /// </summary>
    public void AddTo(OpenIddictServerBuilder server, IServiceCollection services, string algorithm)
    {
        if (!algorithm.Equals(SecurityAlgorithms.RsaSha256, StringComparison.OrdinalIgnoreCase) &&
            !algorithm.Equals(SecurityAlgorithms.EcdsaSha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"Identity:Keys:SigningAlgorithm must be RS256 or ES256, not '{algorithm}'.");

        server.AddSigningCertificate(Rsa);
        server.AddSigningCredentials(new SigningCredentials(new ECDsaSecurityKey(Ecdsa.GetECDsaPrivateKey()!) { KeyId = Ecdsa.Thumbprint }, SecurityAlgorithms.EcdsaSha256));
        server.AddEncryptionCertificate(Encryption);
        server.AddSigningCredentials(PrivateTokenSigning);
        server.AddEncryptionCredentials(PrivateTokenEncryption);

        services.PostConfigure<OpenIddict.Server.OpenIddictServerOptions>(options =>
        {
            var chosen = options.SigningCredentials.First(c => c.Algorithm.Equals(algorithm, StringComparison.OrdinalIgnoreCase));
            options.SigningCredentials.Remove(chosen);
            options.SigningCredentials.Insert(0, chosen);
            var certificate = options.EncryptionCredentials.First(c => c.Key is X509SecurityKey);
            options.EncryptionCredentials.Remove(certificate);
            options.EncryptionCredentials.Insert(0, certificate);
        });
    }
}
