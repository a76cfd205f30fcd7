using System.Security.Cryptography;
using System.Text;
using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using OtpNet;
using QRCoder;

namespace Identity.Server.Mfa;

/// <summary>
/// TOTP (RFC 6238, SHA-1, 6 digits, 30 s, one step of drift each way) and backup codes, and the challenge that
/// holds a password login until its second factor. Five wrong codes in a row lock the factor for a while and kill
/// the challenge they were sent to.
/// </summary>
public sealed class MultiFactor(IdentityDbContext db, IDataProtectionProvider protection, TimeProvider time, IConfiguration configuration,
    SecurityEvents events)
{
    public const string Totp = "totp";
    public const string BackupCode = "backup_code";
    public static readonly string[] LoginMethods = [Totp, BackupCode];
    public static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(15);
    public const int MaxAttempts = 5;
    const int BackupCodeCount = 10;
    const string BackupAlphabet = "abcdefghjkmnpqrstuvwxyz23456789";   // no 0/o, 1/l/i: read aloud or typed without doubt

    readonly IDataProtector protector = protection.CreateProtector("Identity.Mfa.TotpSecret");
    string Issuer => configuration["Identity:Mfa:Issuer"] ?? "Identity";

    public sealed record Setup(string Secret, string SetupUri, string QrCode, IReadOnlyList<string> BackupCodes);

    public enum Outcome { Accepted, Rejected, Locked, NotSetUp, ChallengeInvalid }

    public async Task<bool> IsEnabledAsync(string userId) => await db.MfaFactors.AnyAsync(f => f.UserId == userId && f.Enabled);

    /// <summary>A new secret and backup codes, shown once; nothing is active until <see cref="ConfirmAsync"/>.</summary>
    public async Task<Setup?> BeginAsync(User user)
    {
        var factor = await db.MfaFactors.FindAsync(user.Id);
        if (factor is { Enabled: true })
            return null;

        var secret = KeyGeneration.GenerateRandomKey(20);
        var encoded = Base32Encoding.ToString(secret).TrimEnd('=');
        var salt = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        if (factor is null)
            db.MfaFactors.Add(factor = new MfaFactor { UserId = user.Id, ProtectedSecret = "", BackupSalt = salt });
        (factor.ProtectedSecret, factor.BackupSalt, factor.LastTimeStep, factor.FailedAttempts) = (protector.Protect(encoded), salt, 0, 0);

        var codes = Enumerable.Range(0, BackupCodeCount).Select(_ => NewBackupCode()).ToList();
        await db.MfaBackupCodes.Where(c => c.UserId == user.Id).ExecuteDeleteAsync();
        db.MfaBackupCodes.AddRange(codes.Select(c => new MfaBackupCode { UserId = user.Id, Hash = HashBackupCode(salt, c) }));
        await db.SaveChangesAsync();

        var label = Uri.EscapeDataString(Issuer) + ":" + Uri.EscapeDataString(user.Email ?? user.Id);
        var uri = $"otpauth://totp/{label}?secret={encoded}&issuer={Uri.EscapeDataString(Issuer)}&algorithm=SHA1&digits=6&period=30";
        using var qr = QRCodeGenerator.GenerateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        var png = new PngByteQRCode(qr).GetGraphic(6);
        return new Setup(encoded, uri, "data:image/png;base64," + Convert.ToBase64String(png), codes);
    }

    /// <summary>Checks a code from the factor being set up (or already on) and turns it on.</summary>
    public async Task<(Outcome Outcome, int RemainingBackupCodes)> ConfirmAsync(User user, string? code)
    {
        var factor = await db.MfaFactors.FindAsync(user.Id);
        if (factor is null)
            return (Outcome.NotSetUp, 0);
        var outcome = await CheckAsync(factor, Totp, code);
        if (outcome == Outcome.Accepted && !factor.Enabled)
        {
            factor.Enabled = true;
            user.TwoFactorEnabled = true;
            await events.RaiseAsync(EventTypes.MfaEnabled, SecurityEvents.Subject.Of(user), new { method = Totp });
        }
        await db.SaveChangesAsync();
        return (outcome, await RemainingBackupCodesAsync(user.Id));
    }

    /// <summary>Turns MFA off after a current code (TOTP or backup code).</summary>
    public async Task<Outcome> DisableAsync(User user, string? code)
    {
        var factor = await db.MfaFactors.FindAsync(user.Id);
        if (factor is not { Enabled: true })
            return Outcome.NotSetUp;
        var outcome = await CheckAsync(factor, code?.Length == 6 && code.All(char.IsAsciiDigit) ? Totp : BackupCode, code);
        await db.SaveChangesAsync();
        if (outcome == Outcome.Accepted)
            await RemoveAsync(user);
        return outcome;
    }

    /// <summary>Removes the factor, its backup codes and pending challenges (also an admin's reset).</summary>
    public async Task RemoveAsync(User user)
    {
        await db.MfaChallenges.Where(c => c.UserId == user.Id).ExecuteDeleteAsync();
        await db.MfaBackupCodes.Where(c => c.UserId == user.Id).ExecuteDeleteAsync();
        await db.MfaFactors.Where(f => f.UserId == user.Id).ExecuteDeleteAsync();
        user.TwoFactorEnabled = false;
        await events.RaiseAsync(EventTypes.MfaDisabled, SecurityEvents.Subject.Of(user));
        db.Update(user);
        await db.SaveChangesAsync();
    }

    /// <summary>Holds a password login: the returned mfa_token is the only way to finish it.</summary>
    public async Task<string> ChallengeAsync(User user, string? clientId)
    {
        var token = Base64UrlEncode(RandomNumberGenerator.GetBytes(32));
        db.MfaChallenges.Add(new MfaChallenge { Id = Digest(token), UserId = user.Id, ClientId = clientId, ExpiresAt = time.GetUtcNow() + ChallengeLifetime });
        await db.MfaChallenges.Where(c => c.ExpiresAt < time.GetUtcNow() || c.ConsumedAt != null).ExecuteDeleteAsync();
        await db.SaveChangesAsync();
        return token;
    }

    /// <summary>Finishes a held login with its second factor; the challenge is spent on success.</summary>
    public async Task<(Outcome Outcome, User? User)> CompleteAsync(string? mfaToken, string? clientId, string? method, string? code)
    {
        var challenge = string.IsNullOrEmpty(mfaToken) ? null : await db.MfaChallenges.FindAsync(Digest(mfaToken));
        if (challenge is null || challenge.ConsumedAt is not null || challenge.ExpiresAt < time.GetUtcNow() ||
            challenge.Attempts >= MaxAttempts || challenge.ClientId != clientId)
            return (Outcome.ChallengeInvalid, null);

        var factor = await db.MfaFactors.FindAsync(challenge.UserId);
        if (factor is not { Enabled: true })
            return (Outcome.ChallengeInvalid, null);
        var outcome = await CheckAsync(factor, method ?? Totp, code);
        if (outcome == Outcome.Accepted)
            challenge.ConsumedAt = time.GetUtcNow();
        else
            challenge.Attempts++;
        await db.SaveChangesAsync();
        return (outcome, outcome == Outcome.Accepted ? await db.Users.FindAsync(challenge.UserId) : null);
    }

    public Task<int> RemainingBackupCodesAsync(string userId) => db.MfaBackupCodes.CountAsync(c => c.UserId == userId && c.UsedAt == null);

    async Task<Outcome> CheckAsync(MfaFactor factor, string method, string? code)
    {
        if (factor.LockedUntil > time.GetUtcNow())
            return Outcome.Locked;

        var accepted = method switch
        {
            Totp => CheckTotp(factor, code),
            BackupCode => await UseBackupCodeAsync(factor, code),
            _ => false,
        };
        if (accepted)
        {
            factor.FailedAttempts = 0;
            return Outcome.Accepted;
        }
        await events.RaiseAsync(EventTypes.AuthFailed, new SecurityEvents.Subject(factor.UserId), new { reason = "wrong_code", method }, success: false);
        if (++factor.FailedAttempts >= MaxAttempts)
        {
            (factor.LockedUntil, factor.FailedAttempts) = (time.GetUtcNow() + LockoutDuration, 0);
            return Outcome.Locked;
        }
        return Outcome.Rejected;
    }

    bool CheckTotp(MfaFactor factor, string? code)
    {
        if (code is not { Length: 6 } || !code.All(char.IsAsciiDigit))
            return false;
        var totp = new OtpNet.Totp(Base32Encoding.ToBytes(protector.Unprotect(factor.ProtectedSecret)));
        if (!totp.VerifyTotp(time.GetUtcNow().UtcDateTime, code, out var step, new VerificationWindow(previous: 1, future: 1)) ||
            step <= factor.LastTimeStep)
            return false;
        factor.LastTimeStep = step;
        return true;
    }

    async Task<bool> UseBackupCodeAsync(MfaFactor factor, string? code)
    {
        if (string.IsNullOrWhiteSpace(code))
            return false;
        var hash = HashBackupCode(factor.BackupSalt, code);
        var codes = await db.MfaBackupCodes.Where(c => c.UserId == factor.UserId && c.UsedAt == null).ToListAsync();
        var match = codes.FirstOrDefault(c => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(c.Hash), Encoding.ASCII.GetBytes(hash)));
        if (match is null)
            return false;
        match.UsedAt = time.GetUtcNow();
        return true;
    }

    static string NewBackupCode()
    {
        var chars = RandomNumberGenerator.GetItems<char>(BackupAlphabet, 10);
        return new string(chars, 0, 5) + "-" + new string(chars, 5, 5);
    }

    // Normalised (case, dashes, spaces), then PBKDF2 so that a leaked table does not give the codes away cheaply.
    static string HashBackupCode(string salt, string code)
    {
        var normalized = new string(code.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant).ToArray());
        return Convert.ToBase64String(Rfc2898DeriveBytes.Pbkdf2(normalized, Convert.FromBase64String(salt), 10_000, HashAlgorithmName.SHA256, 32));
    }

    static string Digest(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    static string Base64UrlEncode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
