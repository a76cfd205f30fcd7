using System.Text.RegularExpressions;

namespace Identity.Server.Account;

/// <summary>
/// Identity:Branding: the name, logo and accent colour the account pages, the emails and authenticator apps show, for
/// a server run under its owner's name (Keycloak's login theme basics, Auth0's Universal Login branding). Checked at
/// start: a value the pages cannot show safely stops the server with the reason.
/// </summary>
public sealed partial class Branding
{
    public const string Section = "Identity:Branding";

    /// <summary>The service's name: page titles and headings, email subjects, the issuer in authenticator apps.</summary>
    public string Name { get; init; } = "Identity";

    /// <summary>An https image (or a path on this server) shown above every account page.</summary>
    public string? LogoUrl { get; init; }

    /// <summary>The colour of the pages' buttons and links, as #rrggbb.</summary>
    public string? AccentColor { get; init; }

    /// <summary>The origin the pages may load the logo from (their Content-Security-Policy), when it is not this server.</summary>
    public string? LogoOrigin => LogoUrl is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority) : null;

    public static Branding Load(IConfiguration configuration)
    {
        var branding = configuration.GetSection(Section).Get<Branding>() ?? new();
        if (string.IsNullOrWhiteSpace(branding.Name) || branding.Name.Length > 64 || branding.Name.Any(char.IsControl))
            throw new InvalidOperationException($"{Section}:Name must be 1 to 64 characters, without control characters.");
        if (branding.LogoUrl is { } logo && !(logo.StartsWith('/') && !logo.StartsWith("//", StringComparison.Ordinal) && Uri.IsWellFormedUriString(logo, UriKind.Relative) ||
                Uri.TryCreate(logo, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps && string.IsNullOrEmpty(uri.UserInfo)))
            throw new InvalidOperationException($"{Section}:LogoUrl must be an https URL or a path on this server (/...).");
        if (branding.AccentColor is { } color && !Colour().IsMatch(color))
            throw new InvalidOperationException($"{Section}:AccentColor must be a colour as #rrggbb.");
        return branding;
    }

    [GeneratedRegex("^#[0-9a-fA-F]{6}$")]
    private static partial Regex Colour();
}
