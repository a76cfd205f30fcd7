using System.Net;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Connect;

/// <summary>
/// The device authorization grant (RFC 8628) as a command-line app and its user live it: the app asks for a code and
/// polls with Duende.IdentityModel's device client, the user opens the verification page in a browser, signs in,
/// checks the code and approves or denies.
/// </summary>
public sealed class DeviceFlowTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    async Task<string> RegisterDeviceClientAsync()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = $"cli-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, display_name = "Command line", @public = true,
            grant_types = new[] { "urn:ietf:params:oauth:grant-type:device_code", "refresh_token" },
            scopes = new[] { "openid", "email", "offline_access", "identity" },
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return clientId;
    }

    Task<DeviceAuthorizationResponse> StartAsync(string clientId) => Http.RequestDeviceAuthorizationAsync(new DeviceAuthorizationRequest
    {
        Address = "/connect/device", ClientId = clientId, Scope = "openid email offline_access identity",
    });

    Task<TokenResponse> PollAsync(string clientId, string deviceCode) => Http.RequestDeviceTokenAsync(new DeviceTokenRequest
    {
        Address = "/connect/token", ClientId = clientId, DeviceCode = deviceCode,
    });

    [Fact]
    public async Task DeviceFlow_UserApprovesInTheBrowser_ThePollingAppGetsTokens()
    {
        var clientId = await RegisterDeviceClientAsync();
        var email = await CreateUserAsync();
        var device = await StartAsync(clientId);
        Assert.False(device.IsError, device.Error);

        var pending = await PollAsync(clientId, device.DeviceCode!);
        var browser = new Browser(Factory);
        var approval = await browser.LoginAsync(await browser.OpenAsync(device.VerificationUriComplete!), email, Password);
        var done = await browser.SubmitAsync(approval, button: "consent", value: "accept");
        var tokens = await PollAsync(clientId, device.DeviceCode!);
        var me = await CallApiAsync(tokens.AccessToken!);
        // A device code is spent once; presented again it is taken for stolen and what it bought is revoked, as for codes.
        var again = await PollAsync(clientId, device.DeviceCode!);
        var afterReuse = await CallApiAsync(tokens.AccessToken!);

        Assert.Equal("authorization_pending", pending.Error);
        Assert.Equal(new Uri(Http.BaseAddress!, "/connect/verify"), new Uri(device.VerificationUri!));
        Assert.Contains("Command line", approval.Document!.Body!.TextContent);
        Assert.Contains(device.UserCode!, approval.Document.Body.TextContent);
        Assert.Contains("See your email address", approval.Document.Body.TextContent);
        Assert.Contains("Device connected", done.Document!.Body!.TextContent);
        Assert.False(tokens.IsError, tokens.Error);
        Assert.NotNull(tokens.RefreshToken);
        var jwt = await ValidateJwtAsync(tokens.AccessToken!, "identity");
        Assert.Equal(clientId, jwt.GetClaim("client_id").Value);
        Assert.Equal("pwd", jwt.GetPayloadValue<string[]>("amr").Single());
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal("invalid_grant", again.Error);
        Assert.Equal(HttpStatusCode.Unauthorized, afterReuse.StatusCode);
    }

    [Fact]
    public async Task DeviceFlow_UserDenies_OrTypesAWrongCode_NoTokens()
    {
        var clientId = await RegisterDeviceClientAsync();
        var email = await CreateUserAsync();
        var device = await StartAsync(clientId);
        var browser = new Browser(Factory);

        var entry = await browser.LoginAsync(await browser.OpenAsync(device.VerificationUri!), email, Password);
        var wrong = await browser.OpenAsync("/connect/verify?user_code=000000000");
        var approval = await browser.OpenAsync("/connect/verify?user_code=" + Uri.EscapeDataString(device.UserCode!));
        var denied = await browser.SubmitAsync(approval, button: "consent", value: "deny");
        var polled = await PollAsync(clientId, device.DeviceCode!);

        Assert.Equal("/connect/verify", entry.Url.AbsolutePath);
        Assert.NotNull(entry.Document!.QuerySelector("input[name=user_code]"));
        Assert.Contains("not valid", wrong.Document!.Body!.TextContent);
        Assert.Contains("Request denied", denied.Document!.Body!.TextContent);
        Assert.Equal("access_denied", polled.Error);
    }

    /// <summary>The approval is a form of this server's page: a post from elsewhere, without its antiforgery token, approves nothing.</summary>
    [Fact]
    public async Task DeviceFlow_ForgedApproval_IsRefused()
    {
        var clientId = await RegisterDeviceClientAsync();
        var email = await CreateUserAsync();
        var device = await StartAsync(clientId);
        var browser = new Browser(Factory);
        var approval = await browser.LoginAsync(await browser.OpenAsync(device.VerificationUriComplete!), email, Password);

        var forged = await browser.SubmitAsync(approval, new Dictionary<string, string> { ["__RequestVerificationToken"] = "forged" }, "consent", "accept");
        var polled = await PollAsync(clientId, device.DeviceCode!);

        Assert.Equal(HttpStatusCode.BadRequest, forged.Status);
        Assert.Equal("authorization_pending", polled.Error);
    }
}
