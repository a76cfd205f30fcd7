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
    /// Certificates published in the JWKS, and trusted by this server's own token validation, that never sign: the
    /// next signing keys, announced before they take over, and retired ones, kept until the tokens they signed have
    /// expired. The .pfx files of the folder's published/ subfolder (see <see cref="Rotate"/>).
    /// </summary>
    public required IReadOnlyList<X509Certificate2> Published { get; init; }

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

    public SigningCredentials PrivateTokenSigning => privateTokenSigning ??= SigningOf(PrivateTokenKey);

    public EncryptingCredentials PrivateTokenEncryption => privateTokenEncryption ??= EncryptingOf(PrivateTokenKey);

    SigningCredentials? privateTokenSigning;
    EncryptingCredentials? privateTokenEncryption;

    /// <summary>
    /// Secret keys this server still reads with but no longer (or not yet) protects with: the next ones, announced so
    /// every instance can read what the first to switch protects, and retired ones, kept until what they protected is
    /// gone. The files of the folder's accepted/ subfolder (see <see cref="Rotate"/>); never published.
    /// </summary>
    public required IReadOnlyList<byte[]> AcceptedPrivateTokenKeys { get; init; }

    /// <inheritdoc cref="AcceptedPrivateTokenKeys"/>
    public required IReadOnlyList<X509Certificate2> AcceptedEncryption { get; init; }

    static SigningCredentials SigningOf(byte[] key) =>
        new(new SymmetricSecurityKey(key[..32]) { KeyId = KeyIdOf(key[..32]) }, SecurityAlgorithms.HmacSha256);

    static EncryptingCredentials EncryptingOf(byte[] key) =>
        new(new SymmetricSecurityKey(key[32..]) { KeyId = KeyIdOf(key[32..]) }, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512);

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
            Published = LoadPublished(System.IO.Path.Combine(folder, PublishedFolder), logger),
            AcceptedPrivateTokenKeys = [.. Accepted(folder, "*.key").Select(file => ReadKey(file, 64))],
            AcceptedEncryption = [.. Accepted(folder, "*.pfx").Select(Load)],
        };
    }

    const string PublishedFolder = "published", AcceptedFolder = "accepted";

    static IEnumerable<string> Accepted(string folder, string pattern) =>
        Directory.Exists(System.IO.Path.Combine(folder, AcceptedFolder))
            ? Directory.EnumerateFiles(System.IO.Path.Combine(folder, AcceptedFolder), pattern).Order(StringComparer.Ordinal)
            : [];

    /// <summary>
    /// What `keys rotate` rolls over: the signing keys, announced in the JWKS (published/), and the secret keys, which
    /// only this server reads (accepted/): the encryption certificate and the private-token key. Each with how a new
    /// one is made.
    /// </summary>
    static readonly (string File, string Folder, Action<string> Create)[] Rotated =
    [
        ("signing-rsa.pfx", PublishedFolder, file => Create(file, X509KeyUsageFlags.DigitalSignature, ecdsa: false)),
        ("signing-ecdsa.pfx", PublishedFolder, file => Create(file, X509KeyUsageFlags.DigitalSignature, ecdsa: true)),
        ("encryption-rsa.pfx", AcceptedFolder, file => Create(file, X509KeyUsageFlags.KeyEncipherment, ecdsa: false)),
        ("private-tokens.key", AcceptedFolder, file => WriteNew(file, RandomNumberGenerator.GetBytes(64))),
    ];

    /// <summary>The keys folder of this configuration: Identity:Keys:Path, relative to the content root.</summary>
    public static string FolderOf(WebApplicationBuilder builder) =>
        System.IO.Path.GetFullPath((builder.Configuration.GetSection(KeyOptions.Section).Get<KeyOptions>() ?? new()).Path, builder.Environment.ContentRootPath);

    /// <summary>The command line's `keys rotate` (see <see cref="Rotate"/>); the server does not start.</summary>
    public static bool RunCommand(WebApplicationBuilder builder, string[] args)
    {
        if (args is not ["keys", ..])
            return false;
        if (args is ["keys", "rotate"])
            Rotate(FolderOf(builder), Console.Out);
        else
        {
            Console.Error.WriteLine("The only key command is `keys rotate`.");
            Environment.ExitCode = 2;
        }
        return true;
    }

    /// <summary>
    /// Run once to announce the next keys, restart, and again once every JWKS cache has seen them to make them sign
    /// and protect, restart. Each run makes the announced keys (published/next-*, accepted/next-*) the active ones,
    /// keeps the keys they replace beside them as retired-*-{time} (still published, or still read with; delete those
    /// once what they signed or protected is gone), and announces new ones. No moment lacks a key: the old one is
    /// copied away before the new one is renamed over it.
    /// </summary>
    public static void Rotate(string folder, TextWriter output)
    {
        var time = DateTimeOffset.UtcNow.ToString("yyyyMMddHHmmss");
        foreach (var (file, subfolder, create) in Rotated)
        {
            var (name, extension) = (System.IO.Path.GetFileNameWithoutExtension(file), System.IO.Path.GetExtension(file));
            var beside = Directory.CreateDirectory(System.IO.Path.Combine(folder, subfolder)).FullName;
            var active = System.IO.Path.Combine(folder, file);
            var next = System.IO.Path.Combine(beside, $"next-{file}");
            if (File.Exists(next))
            {
                var retired = System.IO.Path.Combine(beside, $"retired-{name}-{time}{extension}");
                if (File.Exists(active))
                    File.Copy(active, retired, overwrite: false);
                File.Move(next, active, overwrite: true);
                output.WriteLine($"{file}: the announced key {Describe(active)} is now active; the one it replaces is kept as {retired}.");
            }
            create(next);
            output.WriteLine($"{file}: announced {Describe(next)} ({next}); it becomes active at the next `keys rotate`.");
        }
        output.WriteLine("Restart every instance to load the keys.");
    }

    static string Describe(string file) => file.EndsWith(".pfx", StringComparison.Ordinal) ? Load(file).Thumbprint : KeyIdOf(File.ReadAllBytes(file)[..32]);

    static List<X509Certificate2> LoadPublished(string folder, ILogger? logger)
    {
        if (!Directory.Exists(folder))
            return [];
        var certificates = new List<X509Certificate2>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.pfx").Order(StringComparer.Ordinal))
        {
            var certificate = Load(file);
            // Nothing it signed can still be valid, and expired keys in the JWKS only make clients try them.
            if (certificate.NotAfter < DateTime.Now)
                logger?.LogWarning("{File} expired on {NotAfter}: not published. Delete it.", file, certificate.NotAfter);
            else
                certificates.Add(certificate);
        }
        return certificates;
    }

    static X509Certificate2 LoadOrCreate(string file, X509KeyUsageFlags usage, ILogger? logger, bool ecdsa = false)
    {
        if (!File.Exists(file))
        {
            Create(file, usage, ecdsa);
            logger?.LogWarning("Generated a self-signed development key {File}; provide your own certificates in production.", file);
        }
        return Load(file);
    }

    static X509Certificate2 Load(string file) => X509CertificateLoader.LoadPkcs12FromFile(file, password: null, X509KeyStorageFlags.EphemeralKeySet);

    static void Create(string file, X509KeyUsageFlags usage, bool ecdsa)
    {
        var subject = new X500DistinguishedName("CN=Identity " + System.IO.Path.GetFileNameWithoutExtension(file));
        using var key = ecdsa ? (AsymmetricAlgorithm)ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        var request = key is ECDsa ec
            ? new CertificateRequest(subject, ec, HashAlgorithmName.SHA256)
            : new CertificateRequest(subject, (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, critical: true));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(2));
        WriteNew(file, created.Export(X509ContentType.Pkcs12));
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
    /// Publishes both signing keys and the announced and retired ones, and encrypts with the encryption certificate
    /// (the accepted ones only decrypt).
    /// OpenIddict signs with the first signing credential after sorting them (secret keys first, then certificates, by
    /// their dates), so the active key of the chosen algorithm and the encryption certificate are moved to the front
    /// once OpenIddict has sorted: every public key stays in the JWKS, only the active one signs what others read.
    /// The secret keys sign and encrypt only the tokens this server alone reads back (Connect/PrivateTokenProtection),
    /// and are never published.
    /// </summary>
    public void AddTo(OpenIddictServerBuilder server, IServiceCollection services, string algorithm)
    {
        if (!algorithm.Equals(SecurityAlgorithms.RsaSha256, StringComparison.OrdinalIgnoreCase) &&
            !algorithm.Equals(SecurityAlgorithms.EcdsaSha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"Identity:Keys:SigningAlgorithm must be RS256 or ES256, not '{algorithm}'.");

        foreach (var certificate in Published.Prepend(Ecdsa).Prepend(Rsa))
        {
            if (certificate.GetECDsaPrivateKey() is { } ecdsa)
                server.AddSigningCredentials(new SigningCredentials(new ECDsaSecurityKey(ecdsa) { KeyId = certificate.Thumbprint }, SecurityAlgorithms.EcdsaSha256));
            else
                server.AddSigningCertificate(certificate);
        }
        // An expired certificate still decrypts; OpenIddict refuses one, so tokens it sealed (access tokens, when
        // encrypted, live an hour) are past their lifetime anyway.
        foreach (var certificate in AcceptedEncryption.Where(c => c.NotAfter > DateTime.Now).Prepend(Encryption))
            server.AddEncryptionCertificate(certificate);
        var active = (algorithm.Equals(SecurityAlgorithms.RsaSha256, StringComparison.OrdinalIgnoreCase) ? Rsa : Ecdsa).Thumbprint;
        server.AddSigningCredentials(PrivateTokenSigning);
        server.AddEncryptionCredentials(PrivateTokenEncryption);
        // Read with only: PrivateTokenProtection names the active key for every private token it protects.
        foreach (var key in AcceptedPrivateTokenKeys)
        {
            server.AddSigningCredentials(SigningOf(key));
            server.AddEncryptionCredentials(EncryptingOf(key));
        }

        services.PostConfigure<OpenIddict.Server.OpenIddictServerOptions>(options =>
        {
            var chosen = options.SigningCredentials.First(c => (c.Key as X509SecurityKey)?.Certificate.Thumbprint == active || c.Key.KeyId == active);
            options.SigningCredentials.Remove(chosen);
            options.SigningCredentials.Insert(0, chosen);
            var certificate = options.EncryptionCredentials.First(c => (c.Key as X509SecurityKey)?.Certificate.Thumbprint == Encryption.Thumbprint);
            options.EncryptionCredentials.Remove(certificate);
            options.EncryptionCredentials.Insert(0, certificate);
        });
    }
}
