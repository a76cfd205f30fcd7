using System.Text.RegularExpressions;

namespace Identity.Server.Federation;

/// <summary>
/// The external providers users may sign in with, bound from Identity:ExternalProviders. A provider is offered only
/// when it is configured; a half-configured one stops the server at start with the setting to fix.
/// </summary>
public sealed partial class FederationOptions
{
    public const string Section = "Identity:ExternalProviders";

    public ProviderOptions? Google { get; set; }
    public ProviderOptions? GitHub { get; set; }
    public MicrosoftProviderOptions? Microsoft { get; set; }
    public List<OidcProviderOptions> Oidc { get; set; } = [];

    /// <summary>
    /// Where first-party apps may ask /api/v1/auth/oauth/{provider} to send the user back (exact match). The same
    /// addresses must be registered with each provider as redirect URIs of this server's client.
    /// </summary>
    public List<string> RedirectUris { get; set; } = [];

    public class ProviderOptions
    {
        public string? ClientId { get; set; }
        public string? ClientSecret { get; set; }
        public virtual bool IsSet => !string.IsNullOrWhiteSpace(ClientId) || !string.IsNullOrWhiteSpace(ClientSecret);
    }

    public sealed class MicrosoftProviderOptions : ProviderOptions
    {
        /// <summary>common (work, school and personal accounts), organizations, consumers, or one tenant's id.</summary>
        public string TenantId { get; set; } = "common";
        public string Instance { get; set; } = "https://login.microsoftonline.com/";
    }

    public sealed class OidcProviderOptions : ProviderOptions
    {
        /// <summary>The provider's name in URLs and in the idp claim: lower-case letters, digits and dashes.</summary>
        public string? Name { get; set; }
        public string? DisplayName { get; set; }
        public string? Authority { get; set; }
        public List<string> Scopes { get; set; } = ["openid", "profile", "email"];
    }

    /// <summary>Every configured provider, or an exception naming each setting that is missing or wrong.</summary>
    public IReadOnlyList<ExternalProvider> Validate(bool allowHttpAuthorities)
    {
        var errors = new List<string>();
        var providers = new List<ExternalProvider>();

        void Credentials(ProviderOptions options, string path)
        {
            if (string.IsNullOrWhiteSpace(options.ClientId))
                errors.Add($"{path}:ClientId is required.");
            if (string.IsNullOrWhiteSpace(options.ClientSecret))
                errors.Add($"{path}:ClientSecret is required.");
        }

        if (Google?.IsSet == true)
        {
            Credentials(Google, $"{Section}:Google");
            providers.Add(new(ExternalProvider.Google, "Google", ProviderKind.Google));
        }
        if (GitHub?.IsSet == true)
        {
            Credentials(GitHub, $"{Section}:GitHub");
            providers.Add(new(ExternalProvider.GitHub, "GitHub", ProviderKind.GitHub));
        }
        if (Microsoft?.IsSet == true)
        {
            Credentials(Microsoft, $"{Section}:Microsoft");
            if (!Uri.TryCreate(Microsoft.Instance, UriKind.Absolute, out _))
                errors.Add($"{Section}:Microsoft:Instance must be an absolute URL.");
            providers.Add(new(ExternalProvider.Microsoft, "Microsoft", ProviderKind.Microsoft));
        }
        for (var i = 0; i < Oidc.Count; i++)
        {
            var oidc = Oidc[i];
            var path = $"{Section}:Oidc:{i}";
            Credentials(oidc, path);
            if (oidc.Name is null || !NamePattern().IsMatch(oidc.Name))
                errors.Add($"{path}:Name is required: lower-case letters, digits and dashes.");
            else if (providers.Any(p => p.Name == oidc.Name))
                errors.Add($"{path}:Name '{oidc.Name}' is used by another provider.");
            if (!Uri.TryCreate(oidc.Authority, UriKind.Absolute, out var authority) ||
                !(authority.Scheme == Uri.UriSchemeHttps || (allowHttpAuthorities && authority.Scheme == Uri.UriSchemeHttp)))
                errors.Add($"{path}:Authority must be the provider's absolute https:// issuer URL.");
            if (!oidc.Scopes.Contains("openid"))
                errors.Add($"{path}:Scopes must include openid.");
            if (oidc.Name is not null)
                providers.Add(new(oidc.Name, oidc.DisplayName ?? oidc.Name, ProviderKind.Oidc));
        }
        foreach (var uri in RedirectUris)
            if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https") || parsed.Fragment.Length > 0)
                errors.Add($"{Section}:RedirectUris: '{uri}' must be an absolute URL without a fragment.");

        if (errors.Count > 0)
            throw new InvalidOperationException("External provider configuration is invalid: " + string.Join(" ", errors));
        return providers;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,31}$")]
    private static partial Regex NamePattern();
}

public enum ProviderKind { Google, GitHub, Microsoft, Oidc }

/// <summary>A configured provider: its name in URLs, logins and the idp claim, and the label on the login page.</summary>
public sealed record ExternalProvider(string Name, string DisplayName, ProviderKind Kind)
{
    public const string Google = "google";
    public const string GitHub = "github";
    public const string Microsoft = "microsoft";
}

/// <summary>The configured providers, in the order the login page shows them.</summary>
public sealed class ExternalProviders(IReadOnlyList<ExternalProvider> all)
{
    public IReadOnlyList<ExternalProvider> All { get; } = all;
    public ExternalProvider? Find(string? name) => All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.Ordinal));
}
