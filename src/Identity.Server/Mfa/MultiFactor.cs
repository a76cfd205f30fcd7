using System.Security.Cryptography;
using System.Text;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using OtpNet;
using QRCoder;

namespace Identity.Server.Mfa;

/// <summary>
/// TOTP (RFC 6238, SHA-1, 6 digits, 30 s, one step of drift each way) and backup codes, and the challenge that
/// holds a password login until its second factor. Five wrong codes in a row lock the factor for a while and kill
/// the challenge they were sent to. Where a second factor is required (<see cref="MfaPolicy"/>, or an app's minimum_acr),
/// a login without one is held the same way while the user sets up an authenticator app (Keycloak's "Configure OTP"
/// required action, Auth0's enrolment at login): the challenge's first right code turns the app on and finishes it.
/// </summary>
public sealed class MultiFactor(IdentityDbContext db, IDataProtectionProvider protection, TimeProvider time, IConfiguration configuration,
    SecurityEvents events, IEnumerable<ISmsSender> senders, Account.Branding branding, MfaPolicy policy)
{
    public const string Totp = "totp";
    public const string BackupCode = "backup_code";
    public const string Phone = "phone";
    public const string Sms = "sms";
    public static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(15);
    public const int MaxAttempts = 5;
    const int BackupCodeCount = 10;
    const string BackupAlphabet = "abcdefghjkmnpqrstuvwxyz23456789";   // no 0/o, 1/l/i: read aloud or typed without doubt

    readonly IDataProtector protector = protection.CreateProtector("Identity.Mfa.TotpSecret");
    readonly ISmsSender? sms = senders.FirstOrDefault();

    public bool SmsAvailable => sms is not null;
    string Issuer => configuration["Identity:Mfa:Issuer"] ?? branding.Name;

    public sealed record Setup(string Secret, string SetupUri, string QrCode, IReadOnlyList<string> BackupCodes);
    public sealed record PhoneSetup(string Phone, IReadOnlyList<string> BackupCodes, long ExpiresIn);

    /// <summary>The ways to finish a held login: the factor's codes, and backup codes.</summary>
    public async Task<string[]> LoginMethodsAsync(string userId) =>
        await db.MfaFactors.AsNoTracking().Where(f => f.UserId == userId).Select(f => f.Method).FirstOrDefaultAsync() == Phone
            ? [Sms, BackupCode]
            : [Totp, BackupCode];

    public enum Outcome { Accepted, Rejected, Locked, NotSetUp, ChallengeInvalid, RequiredByPolicy }

    public async Task<bool> IsEnabledAsync(string userId) => await db.MfaFactors.AnyAsync(f => f.UserId == userId && f.Enabled);

    /// <summary>What a login by password or external provider needs after its first factor.</summary>
    public enum Step { None, Code, Enrollment }

    /// <summary>
    /// A code when the account has a second factor; else its setup when the policy requires one of this account or
    /// the app being signed into does (<paramref name="appRequiresIt"/>: its minimum_acr is multi-factor).
    /// </summary>
    public async Task<Step> NextStepAsync(User user, bool appRequiresIt = false) =>
        await IsEnabledAsync(user.Id) ? Step.Code
        : appRequiresIt || await policy.AppliesToAsync(db, user.Id) ? Step.Enrollment
        : Step.None;

    /// <summary>
    /// Holds a login until an authenticator app is set up: a new secret and backup codes (shown once, nothing active),
    /// and an mfa_token whose first right code from the app turns it on and finishes the login.
    /// </summary>
    public async Task<(string MfaToken, Setup Setup)> EnrollAsync(User user, string? clientId, string? identityProvider = null, bool rememberMe = false)
    {
        var setup = await BeginAsync(user) ?? throw new InvalidOperationException("The account already has a second factor.");
        return (await ChallengeAsync(user, clientId, send: false, identityProvider, rememberMe, enrollment: true), setup);
    }

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
        (factor.Method, factor.ProtectedSecret, factor.ProtectedPhone, factor.BackupSalt, factor.LastTimeStep, factor.FailedAttempts) =
            (Totp, protector.Protect(encoded), null, salt, 0, 0);
        var codes = await NewBackupCodesAsync(user, salt);

        var label = Uri.EscapeDataString(Issuer) + ":" + Uri.EscapeDataString(user.Email ?? user.Id);
        var uri = $"otpauth://totp/{label}?secret={encoded}&issuer={Uri.EscapeDataString(Issuer)}&algorithm=SHA1&digits=6&period=30";
        using var qr = QRCodeGenerator.GenerateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        var png = new PngByteQRCode(qr).GetGraphic(6);
        return new Setup(encoded, uri, "data:image/png;base64," + Convert.ToBase64String(png), codes);
    }

    /// <summary>
    /// A phone that receives a code by SMS now and at each login; nothing is active until <see cref="ConfirmAsync"/>
    /// checks the code. Null when MFA is already on.
    /// </summary>
    public async Task<PhoneSetup?> BeginPhoneAsync(User user, string number)
    {
        var factor = await db.MfaFactors.FindAsync(user.Id);
        if (factor is { Enabled: true })
            return null;
        var salt = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        if (factor is null)
            db.MfaFactors.Add(factor = new MfaFactor { UserId = user.Id, ProtectedSecret = "", BackupSalt = salt });
        (factor.Method, factor.ProtectedSecret, factor.ProtectedPhone, factor.BackupSalt, factor.FailedAttempts) =
            (Phone, "", protector.Protect(number), salt, 0);
        var codes = await NewBackupCodesAsync(user, salt);
        await SendCodeAsync(factor, await ChallengeAsync(user, PhoneSetupClient, send: false));
        await db.SaveChangesAsync();
        return new PhoneSetup(PhoneNumbers.Masked(number), codes, (long)ChallengeLifetime.TotalSeconds);
    }

    const string PhoneSetupClient = "phone-setup";

    async Task<List<string>> NewBackupCodesAsync(User user, string salt)
    {
        var codes = Enumerable.Range(0, BackupCodeCount).Select(_ => NewBackupCode()).ToList();
        await db.MfaBackupCodes.Where(c => c.UserId == user.Id).ExecuteDeleteAsync();
        db.MfaBackupCodes.AddRange(codes.Select(c => new MfaBackupCode { UserId = user.Id, Hash = HashBackupCode(salt, c) }));
        await db.SaveChangesAsync();
        return codes;
    }

    /// <summary>Texts a fresh code for the challenge; only its hash is kept, on the challenge.</summary>
    async Task SendCodeAsync(MfaFactor factor, string challengeToken)
    {
        var challenge = (await db.MfaChallenges.FindAsync(OneTimeTokens.Digest(challengeToken)))!;
        var code = RandomNumberGenerator.GetInt32(0, 1_000_000).ToString("D6");
        challenge.CodeHash = OneTimeTokens.Digest(challenge.Id + ":" + code);
        await sms!.SendAsync(protector.Unprotect(factor.ProtectedPhone!), $"Your {Issuer} code is {code}. It expires in {ChallengeLifetime.TotalMinutes:0} minutes.");
    }

    /// <summary>Checks a code from the factor being set up (or already on) and turns it on.</summary>
    public async Task<(Outcome Outcome, int RemainingBackupCodes)> ConfirmAsync(User user, string? code)
    {
        var factor = await db.MfaFactors.FindAsync(user.Id);
        if (factor is null)
            return (Outcome.NotSetUp, 0);
        var now = time.GetUtcNow();
        // A phone is confirmed with the code of its setup challenge; TOTP with the app's current code.
        var setup = factor.Method == Phone
            ? await db.MfaChallenges.Where(c => c.UserId == user.Id && c.ClientId == PhoneSetupClient && c.ConsumedAt == null && c.ExpiresAt > now)
                .OrderByDescending(c => c.ExpiresAt).FirstOrDefaultAsync()
            : null;
        var outcome = await CheckAsync(factor, Totp, code, setup);
        if (outcome == Outcome.Accepted && setup is not null)
            setup.ConsumedAt = time.GetUtcNow();
        if (outcome == Outcome.Accepted && !factor.Enabled)
            await TurnOnAsync(user, factor);
        await db.SaveChangesAsync();
        return (outcome, await RemainingBackupCodesAsync(user.Id));
    }

    async Task TurnOnAsync(User user, MfaFactor factor)
    {
        factor.Enabled = true;
        user.TwoFactorEnabled = true;
        await events.RaiseAsync(EventTypes.MfaEnabled, SecurityEvents.Subject.Of(user), new { method = factor.Method });
    }

    /// <summary>
    /// Turns MFA off after a current code (TOTP or backup code), unless the policy requires it of the account: then only
    /// an administrator's reset removes it, and the next login sets up a new one.
    /// </summary>
    public async Task<Outcome> DisableAsync(User user, string? code)
    {
        var factor = await db.MfaFactors.FindAsync(user.Id);
        if (factor is not { Enabled: true })
            return Outcome.NotSetUp;
        if (await policy.AppliesToAsync(db, user.Id))
            return Outcome.RequiredByPolicy;
        // Turning a phone factor off takes a backup code: no fresh SMS code is pending outside a login.
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
        // mfa.disabled only when MFA was on: resetting an account without it (or mid-setup) changes nothing to report.
        if (user.TwoFactorEnabled)
            await events.RaiseAsync(EventTypes.MfaDisabled, SecurityEvents.Subject.Of(user));
        user.TwoFactorEnabled = false;
        db.Update(user);
        await db.SaveChangesAsync();
    }

    /// <summary>
    /// Holds a login (by password, or through <paramref name="identityProvider"/>): the returned mfa_token is the only
    /// way to finish it. A phone gets its code now.
    /// </summary>
    public async Task<string> ChallengeAsync(User user, string? clientId, bool send = true, string? identityProvider = null, bool rememberMe = false,
        bool enrollment = false)
    {
        var token = OneTimeTokens.New();
        db.MfaChallenges.Add(new MfaChallenge
        {
            Id = OneTimeTokens.Digest(token), UserId = user.Id, ClientId = clientId, IdentityProvider = identityProvider, RememberMe = rememberMe,
            ExpiresAt = time.GetUtcNow() + ChallengeLifetime, Enrollment = enrollment,
        });
        await db.MfaChallenges.Where(c => c.ExpiresAt < time.GetUtcNow() || c.ConsumedAt != null).ExecuteDeleteAsync();
        await db.SaveChangesAsync();
        if (send && await db.MfaFactors.FindAsync(user.Id) is { Method: Phone } factor && sms is not null)
        {
            await SendCodeAsync(factor, token);
            await db.SaveChangesAsync();
        }
        return token;
    }

    /// <summary>
    /// Finishes a held login with its second factor; the challenge is spent on success. The identity provider is the
    /// one the login started with (null for a password).
    /// </summary>
    public async Task<(Outcome Outcome, User? User, string? IdentityProvider, bool RememberMe)> CompleteAsync(string? mfaToken, string? clientId, string? method, string? code)
    {
        if (string.IsNullOrEmpty(mfaToken))
            return (Outcome.ChallengeInvalid, null, null, false);
        var id = OneTimeTokens.Digest(mfaToken);
        var now = time.GetUtcNow();
        // Every check first takes one of the challenge's attempts in a single conditional update (read-then-save
        // would let requests racing on one mfa_token test any number of codes between them).
        var taken = await db.MfaChallenges
            .Where(c => c.Id == id && c.ConsumedAt == null && c.ExpiresAt >= now && c.Attempts < MaxAttempts && c.ClientId == clientId)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Attempts, c => c.Attempts + 1));
        if (taken == 0)
            return (Outcome.ChallengeInvalid, null, null, false);
        var challenge = await db.MfaChallenges.AsNoTracking().SingleAsync(c => c.Id == id);

        var factor = await db.MfaFactors.FindAsync(challenge.UserId);
        // A login held for a setup is finished by the new app's code (not a backup code: that would prove no app).
        var enrolling = challenge.Enrollment && factor is { Enabled: false, Method: Totp };
        if (factor is null || !(factor.Enabled || enrolling))
            return (Outcome.ChallengeInvalid, null, null, false);
        var outcome = enrolling && (method ?? Totp) != Totp ? Outcome.Rejected : await CheckAsync(factor, method ?? Totp, code, challenge);
        // Spent by the first request that got it right, in one conditional update: one mfa_token, one set of tokens.
        if (outcome == Outcome.Accepted && await db.MfaChallenges.Where(c => c.Id == id && c.ConsumedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.ConsumedAt, now)) == 0)
            outcome = Outcome.ChallengeInvalid;
        if (outcome == Outcome.Accepted && enrolling)
            await TurnOnAsync((await db.Users.FindAsync(challenge.UserId))!, factor);
        await db.SaveChangesAsync();
        return outcome == Outcome.Accepted ? (outcome, await db.Users.FindAsync(challenge.UserId), challenge.IdentityProvider, challenge.RememberMe) : (outcome, null, null, false);
    }

    public Task<int> RemainingBackupCodesAsync(string userId) => db.MfaBackupCodes.CountAsync(c => c.UserId == userId && c.UsedAt == null);

    /// <summary>A one-time code (totp and sms mean the factor's own code, whichever it is) or a backup code.</summary>
    async Task<Outcome> CheckAsync(MfaFactor factor, string method, string? code, MfaChallenge? challenge = null)
    {
        if (factor.LockedUntil > time.GetUtcNow())
            return Outcome.Locked;

        var accepted = method switch
        {
            Totp or Sms when factor.Method == Phone => challenge?.CodeHash is { } hash && code is { Length: 6 } &&
                CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(hash), Encoding.ASCII.GetBytes(OneTimeTokens.Digest(challenge.Id + ":" + code))),
            Totp or Sms => await CheckTotpAsync(factor, code),
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

    async Task<bool> CheckTotpAsync(MfaFactor factor, string? code)
    {
        if (code is not { Length: 6 } || !code.All(char.IsAsciiDigit))
            return false;
        var totp = new OtpNet.Totp(Base32Encoding.ToBytes(protector.Unprotect(factor.ProtectedSecret)));
        if (!totp.VerifyTotp(time.GetUtcNow().UtcDateTime, code, out var step, new VerificationWindow(previous: 1, future: 1)) ||
            step <= factor.LastTimeStep)
            return false;
        // The step moves forward in one conditional update: of two requests with the same code, one passes.
        if (await db.MfaFactors.Where(f => f.UserId == factor.UserId && f.LastTimeStep < step)
                .ExecuteUpdateAsync(s => s.SetProperty(f => f.LastTimeStep, step)) == 0)
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
        // Spent in one conditional update: a code raced by two requests is used once.
        return match is not null && await db.MfaBackupCodes.Where(c => c.Id == match.Id && c.UsedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.UsedAt, time.GetUtcNow())) == 1;
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
}
