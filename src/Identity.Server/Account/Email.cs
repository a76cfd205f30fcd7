using System.Net;
using System.Net.Mail;

namespace Identity.Server.Account;

/// <summary>Sends account emails (password reset, address verification). Plug in a provider by registering an implementation.</summary>
public interface IEmailSender
{
    Task SendAsync(string to, string subject, string body, CancellationToken cancellationToken = default);
}

public sealed class EmailOptions
{
    public const string Section = "Identity:Email";

    /// <summary>The sender address of every email.</summary>
    public string From { get; set; } = "identity@localhost";

    /// <summary>An SMTP relay: Host (and Port, EnableSsl, Username, Password). Unset: no SMTP sender.</summary>
    public SmtpOptions Smtp { get; set; } = new();

    /// <summary>Development sender: each email becomes a file in this folder. Used when no SMTP host is set.</summary>
    public string? DevelopmentFolder { get; set; }

    /// <summary>A reset link is a key to the account: short.</summary>
    public TimeSpan ResetLinkLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>A verification link only proves a mailbox: days.</summary>
    public TimeSpan VerificationLinkLifetime { get; set; } = TimeSpan.FromDays(2);

    public sealed class SmtpOptions
    {
        public string? Host { get; set; }
        public int Port { get; set; } = 587;
        public bool EnableSsl { get; set; } = true;
        public string? Username { get; set; }
        public string? Password { get; set; }
    }
}

/// <summary>Sends through an SMTP relay (STARTTLS by default), as most mail services offer.</summary>
public sealed class SmtpEmailSender(EmailOptions options) : IEmailSender
{
    public async Task SendAsync(string to, string subject, string body, CancellationToken cancellationToken = default)
    {
        using var client = new SmtpClient(options.Smtp.Host, options.Smtp.Port) { EnableSsl = options.Smtp.EnableSsl };
        if (options.Smtp.Username is not null)
            client.Credentials = new NetworkCredential(options.Smtp.Username, options.Smtp.Password);
        using var message = new MailMessage(options.From, to, subject, body);
        await client.SendMailAsync(message, cancellationToken);
    }
}

/// <summary>Writes each email to a file, so a developer or a test can follow the link that "was sent".</summary>
public sealed class FolderEmailSender(string folder) : IEmailSender
{
    public async Task SendAsync(string to, string subject, string body, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(folder);
        var name = $"{DateTime.UtcNow:yyyyMMddHHmmssfffffff}-{Guid.NewGuid():N}.txt";
        await File.WriteAllTextAsync(Path.Combine(folder, name), $"To: {to}\nSubject: {subject}\n\n{body}\n", cancellationToken);
    }
}
