using System.Text.RegularExpressions;

namespace Identity.Server.Mfa;

/// <summary>Sends text messages. Plug in a provider (Twilio, SNS, ...) by registering an implementation.</summary>
public interface ISmsSender
{
    Task SendAsync(string phoneNumber, string message, CancellationToken cancellationToken = default);
}

public sealed class SmsOptions
{
    public const string Section = "Identity:Mfa:Sms";

    /// <summary>Development sender: each message becomes a file in this folder. Unset: no sender, no SMS method.</summary>
    public string? DevelopmentFolder { get; set; }
}

/// <summary>Writes each message to a file, so a developer or a test can read the code that "was sent".</summary>
public sealed class FolderSmsSender(string folder) : ISmsSender
{
    public async Task SendAsync(string phoneNumber, string message, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(folder);
        var name = $"{DateTime.UtcNow:yyyyMMddHHmmssfffffff}-{new string(phoneNumber.Where(char.IsAsciiDigit).ToArray())}.txt";
        await File.WriteAllTextAsync(Path.Combine(folder, name), $"To: {phoneNumber}\n\n{message}\n", cancellationToken);
    }
}

public static partial class PhoneNumbers
{
    [GeneratedRegex(@"^\+[1-9][0-9]{6,14}$")]
    public static partial Regex E164();

    public static string Masked(string number) => number[..Math.Min(3, number.Length)] + new string('•', Math.Max(0, number.Length - 5)) + number[^2..];
}
