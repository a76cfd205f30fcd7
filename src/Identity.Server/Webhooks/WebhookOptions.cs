namespace Identity.Server.Webhooks;

public sealed class WebhookOptions
{
    public const string Section = "Identity:Webhooks";

    /// <summary>Allow receivers on loopback, private and link-local addresses (SSRF risk). Default: only in Development.</summary>
    public bool? AllowPrivateNetworks { get; set; }

    /// <summary>A receiver that has not answered by then has failed this attempt.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the delivery job looks for due deliveries.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
}
