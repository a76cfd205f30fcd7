using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Account;

public sealed class BrandedServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:Branding:Name", BrandName),
    new("Identity:Branding:LogoUrl", Logo),
    new("Identity:Branding:AccentColor", "#0055aa"),
])
{
    public const string BrandName = "Acme <Accounts>";
    public const string Logo = "https://cdn.acme.example/logo.png";
}

/// <summary>
/// Identity:Branding: the account pages show the service's name (as text) and logo, in its colour, and may load the logo
/// from its origin and no other; emails and authenticator apps name the service.
/// </summary>
public sealed class BrandingTests(BrandedServer server) : ServerTests<BrandedServer>(server)
{
    [Fact]
    public async Task Pages_ShowTheNameLogoAndColour_AndMayLoadOnlyThatLogo()
    {
        var page = await new Browser(Factory).OpenAsync("/Account/Login");
        var response = await Http.GetAsync("/Account/Login");
        var policy = response.Headers.GetValues("Content-Security-Policy").Single();

        Assert.Equal($"Sign in · {BrandedServer.BrandName}", page.Document!.Title);
        Assert.Equal(BrandedServer.BrandName, page.Document.QuerySelector("header.brand span")!.TextContent);
        Assert.Equal(BrandedServer.Logo, page.Document.QuerySelector("header.brand img")!.GetAttribute("src"));
        Assert.Contains("button { background: #0055aa;", page.Body);
        Assert.Contains("img-src 'self' data: https://cdn.acme.example;", policy);
    }

    [Fact]
    public async Task EmailsAndAuthenticatorApps_NameTheService()
    {
        var email = await CreateUserAsync();
        var token = await LoginAsync(email);

        await ApiAsync(HttpMethod.Post, "/api/v1/auth/password/forgot", body: new { email });
        var setup = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/setup", token, new { method = "totp" });
        var sent = Directory.GetFiles(Factory.EmailFolder).Select(File.ReadAllText).Single(m => m.StartsWith($"To: {email}\n", StringComparison.Ordinal));

        Assert.Contains($"\nSubject: {BrandedServer.BrandName}: Reset your password\n", sent);
        Assert.Contains($"issuer={Uri.EscapeDataString(BrandedServer.BrandName)}", setup.Body.GetProperty("setup_uri").GetString());
    }
}
