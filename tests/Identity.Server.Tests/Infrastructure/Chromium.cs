using Microsoft.Playwright;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// One headless Chromium for the browser tests: Debian's package (IDENTITY_TEST_CHROMIUM names another binary),
/// driven by Playwright; no browser is downloaded. The flags keep it off the network beyond what a test asks for.
/// </summary>
public sealed class Chromium : IAsyncLifetime
{
    IPlaywright? playwright;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        playwright = await Playwright.CreateAsync();
        Browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("IDENTITY_TEST_CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        playwright?.Dispose();
    }
}
