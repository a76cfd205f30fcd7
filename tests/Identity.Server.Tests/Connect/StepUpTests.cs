using System.Net;
using Duende.IdentityModel.Client;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Identity.Server.Tests.Connect;

/// <summary>
/// acr and step-up (OIDC Core §2 and §3.1.2.1, RFC 9470): every token says how strong the sign-in was, and an app that
/// asks for a second factor with acr_values gets the login page again when the browser's session had none and the
/// account has one, once; an account that cannot meet it signs in all the same, and acr says so. A real OidcClient.
/// </summary>
public sealed class StepUpTests(SqliteServer factory) : ServerTests<SqliteServer>(factory)
{
    const string Redirect = "https://stepup.example.test/callback";
    const string MultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    const string PhishingResistant = "http://schemas.openid.net/pape/policies/2007/06/phishing-resistant";
    const string OneFactor = "http://schemas.openid.net/pape/policies/2007/06/none";

    async Task<OidcClient> ClientAsync(string? minimumAcr = null, string consent = "implicit")
    {
        var clientId = $"stepup-{Guid.NewGuid():N}";
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, consent_type = consent, grant_types = new[] { "authorization_code", "refresh_token" },
            redirect_uris = new[] { Redirect }, scopes = new[] { "openid", "email", "offline_access" }, minimum_acr = minimumAcr,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Body.ToString());
        return OidcClientFor(clientId, Redirect, "openid email offline_access");
    }

    /// <summary>A sign-in asking for <paramref name="acr"/>: the page the browser is shown (or leaves for the app with).</summary>
    static async Task<(Browser.Page Page, AuthorizeState State)> AskAsync(Browser browser, OidcClient client, string acr)
    {
        var state = await client.PrepareLoginAsync(new Parameters { { "acr_values", acr } });
        return (await browser.OpenAsync(state.StartUrl), state);
    }

    static string? AcrOf(string jwt) => new JsonWebToken(jwt).GetPayloadValue<string>("acr");

    [Fact]
    public async Task AcrValues_MultiFactor_StepsUpASessionWithoutIt_Once()
    {
        var client = await ClientAsync();
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var plain = await SignInThroughAsync(browser, client, email);
        var key = await EnrollTotpAsync(email);

        var (login, state) = await AskAsync(browser, client, MultiFactor);
        var codePage = await browser.LoginAsync(login, email, Password);
        var back = await browser.SubmitAsync(codePage, new Dictionary<string, string> { ["Code"] = Otp.Totp(key, DateTimeOffset.UtcNow.AddSeconds(30)) });
        var stepped = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);
        var (again, againState) = await AskAsync(browser, client, MultiFactor);
        var againResult = await client.ProcessResponseAsync(again.LeftTo!.ToString(), againState);
        var refreshed = await client.RefreshTokenAsync(stepped.RefreshToken);

        Assert.Equal(OneFactor, plain.User.FindFirst("acr")?.Value);
        Assert.Equal(OneFactor, AcrOf(plain.AccessToken));
        Assert.Equal("/Account/Login", login.Url.AbsolutePath);
        Assert.NotNull(codePage.Document!.QuerySelector("input[name=Code]"));
        Assert.False(stepped.IsError, stepped.Error);
        Assert.Equal(MultiFactor, stepped.User.FindFirst("acr")?.Value);
        Assert.Contains("otp", stepped.User.FindAll("amr").Select(c => c.Value));
        Assert.Equal(MultiFactor, AcrOf(stepped.AccessToken));
        // The session now has the second factor: the next such request needs no login, nor does a refresh lose the level.
        Assert.NotNull(again.LeftTo);
        Assert.Equal(MultiFactor, againResult.User.FindFirst("acr")?.Value);
        Assert.False(refreshed.IsError, refreshed.Error);
        Assert.Equal(MultiFactor, AcrOf(refreshed.AccessToken));
    }

    /// <summary>
    /// An account without a second factor asked for multi-factor, and one without a passkey asked for phishing
    /// resistance, are not sent round the login page for nothing: signed in as they are, acr telling the app.
    /// </summary>
    [Fact]
    public async Task AcrValues_TheAccountCannotMeet_SignsInAsItIs_AndSaysSo()
    {
        var client = await ClientAsync();
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        await SignInThroughAsync(browser, client, email);

        var (oneFactor, oneState) = await AskAsync(browser, client, MultiFactor);
        var oneResult = await client.ProcessResponseAsync(oneFactor.LeftTo!.ToString(), oneState);
        var key = await EnrollTotpAsync(email);
        var (stepUp, stepState) = await AskAsync(browser, client, MultiFactor);
        var codePage = await browser.LoginAsync(stepUp, email, Password);
        var back = await browser.SubmitAsync(codePage, new Dictionary<string, string> { ["Code"] = Otp.Totp(key, DateTimeOffset.UtcNow.AddSeconds(30)) });
        await client.ProcessResponseAsync(back.LeftTo!.ToString(), stepState);
        var (noPasskey, noPasskeyState) = await AskAsync(browser, client, PhishingResistant);
        var noPasskeyResult = await client.ProcessResponseAsync(noPasskey.LeftTo!.ToString(), noPasskeyState);
        var discovery = await Http.GetDiscoveryDocumentAsync();

        Assert.False(oneResult.IsError, oneResult.Error);
        Assert.Equal(OneFactor, oneResult.User.FindFirst("acr")?.Value);
        Assert.False(noPasskeyResult.IsError, noPasskeyResult.Error);
        Assert.Equal(MultiFactor, noPasskeyResult.User.FindFirst("acr")?.Value);
        Assert.Equal([PhishingResistant, MultiFactor, OneFactor], discovery.TryGetStringArray("acr_values_supported"));
        Assert.Contains("acr", discovery.ClaimsSupported);
    }

    /// <summary>prompt=none cannot show the login page a step up needs: login_required, back at the app.</summary>
    [Fact]
    public async Task AcrValues_WithPromptNone_WhenAStepUpIsNeeded_IsLoginRequired()
    {
        var client = await ClientAsync();
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        await SignInThroughAsync(browser, client, email);
        await EnrollTotpAsync(email);

        var state = await client.PrepareLoginAsync(new Parameters { { "acr_values", MultiFactor }, { "prompt", "none" } });
        var page = await browser.OpenAsync(state.StartUrl);
        var result = await client.ProcessResponseAsync(page.LeftTo!.ToString(), state);

        Assert.Equal("login_required", result.Error);
    }

    /// <summary>
    /// A client's minimum_acr is not voluntary: a session without a second factor steps up at the login page (then
    /// the consent page) with no acr_values asked; an account with no second factor sets up an authenticator app at
    /// that login (Keycloak's Configure OTP); an account without a passkey, which a login cannot set up, goes back to a
    /// phishing-resistant app with unmet_authentication_requirements.
    /// </summary>
    [Fact]
    public async Task MinimumAcr_StepsUpWhatItCan_SetsUpAnApp_AndRefusesWhatItCannot()
    {
        var plainApp = await ClientAsync();
        var strictApp = await ClientAsync(minimumAcr: MultiFactor, consent: "explicit");
        var passkeyApp = await ClientAsync(minimumAcr: PhishingResistant);
        var withFactor = await CreateUserAsync();
        var withoutFactor = await CreateUserAsync();
        var browser = new Browser(Factory);
        await SignInThroughAsync(browser, plainApp, withFactor);
        var key = await EnrollTotpAsync(withFactor);

        var state = await strictApp.PrepareLoginAsync();
        var codePage = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), withFactor, Password);
        var consent = await browser.SubmitAsync(codePage, new Dictionary<string, string> { ["Code"] = Otp.Totp(key, DateTimeOffset.UtcNow.AddSeconds(30)) });
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var stepped = await strictApp.ProcessResponseAsync(back.LeftTo!.ToString(), state);

        var otherBrowser = new Browser(Factory);
        await SignInThroughAsync(otherBrowser, plainApp, withoutFactor);
        var setupState = await strictApp.PrepareLoginAsync();
        var setupPage = await otherBrowser.LoginAsync(await otherBrowser.OpenAsync(setupState.StartUrl), withoutFactor, Password);
        var secret = setupPage.Document!.QuerySelector("#secret")?.TextContent;
        var setupConsent = await otherBrowser.SubmitAsync(setupPage, new Dictionary<string, string> { ["Code"] = Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow) });
        var setupBack = await otherBrowser.SubmitAsync(setupConsent, button: "consent", value: "accept");
        var setUp = await strictApp.ProcessResponseAsync(setupBack.LeftTo!.ToString(), setupState);

        var refusedState = await passkeyApp.PrepareLoginAsync();
        var thirdBrowser = new Browser(Factory);
        var refusedPage = await thirdBrowser.LoginAsync(await thirdBrowser.OpenAsync(refusedState.StartUrl), await CreateUserAsync(), Password);
        var refused = await passkeyApp.ProcessResponseAsync(refusedPage.LeftTo!.ToString(), refusedState);

        Assert.Equal("/Account/Consent", consent.Url.AbsolutePath);
        Assert.False(stepped.IsError, stepped.Error);
        Assert.Equal(MultiFactor, stepped.User.FindFirst("acr")?.Value);
        // The session of one factor is sent to log in again, and the login sets up the app the client requires.
        Assert.Equal("/Account/Login", setupPage.Url.AbsolutePath);
        Assert.NotNull(setupPage.Document.QuerySelector("#enrollment"));
        Assert.Equal("/Account/Consent", setupConsent.Url.AbsolutePath);
        Assert.False(setUp.IsError, setUp.Error);
        Assert.Equal(MultiFactor, setUp.User.FindFirst("acr")?.Value);
        Assert.Equal(Redirect, refusedPage.LeftTo!.GetLeftPart(UriPartial.Path));
        Assert.Equal("unmet_authentication_requirements", refused.Error);
        Assert.Contains("passkey", refused.ErrorDescription);
    }

    /// <summary>The clients API keeps minimum_acr, shows it, clears it with "", and refuses a level it does not know.</summary>
    [Fact]
    public async Task MinimumAcr_ThroughTheClientsApi()
    {
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = (await ClientAsync(minimumAcr: PhishingResistant)).Options.ClientId;

        var shown = await ApiAsync(HttpMethod.Get, $"/api/v1/clients/{clientId}", admin);
        var bad = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { minimum_acr = "gold" });
        var cleared = await ApiAsync(HttpMethod.Put, $"/api/v1/clients/{clientId}", admin, new { minimum_acr = "" });

        Assert.Equal(PhishingResistant, shown.Body.GetProperty("client").GetProperty("minimum_acr").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Equal("minimum_acr", bad.Body.GetProperty("error").GetProperty("details").GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.OK, cleared.Status);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, cleared.Body.GetProperty("client").GetProperty("minimum_acr").ValueKind);
    }
}

/// <summary>First-party clients from configuration with the password grant and a minimum: multi-factor, and phishing-resistant.</summary>
public sealed class MinimumAcrServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides:
[
    new("Identity:Clients:5:ClientId", ClientId),
    new("Identity:Clients:5:ClientSecret", Secret),
    new("Identity:Clients:5:GrantTypes:0", "password"),
    new("Identity:Clients:5:Scopes:0", "openid"),
    new("Identity:Clients:5:MinimumAcr", "http://schemas.openid.net/pape/policies/2007/06/multi-factor"),
    new("Identity:Clients:6:ClientId", PasskeyClientId),
    new("Identity:Clients:6:ClientSecret", Secret),
    new("Identity:Clients:6:GrantTypes:0", "password"),
    new("Identity:Clients:6:Scopes:0", "openid"),
    new("Identity:Clients:6:MinimumAcr", "http://schemas.openid.net/pape/policies/2007/06/phishing-resistant"),
])
{
    public const string ClientId = "back-office";
    public const string PasskeyClientId = "vault";
    public const string Secret = "back-office-secret-0123456789abcdef0123456789";
}

public sealed class MinimumAcrTokenTests(MinimumAcrServer server) : ServerTests<MinimumAcrServer>(server)
{
    /// <summary>
    /// The password grant of a client with a multi-factor minimum holds a login of one factor until the account sets up
    /// an authenticator app (the MFA grant finishes it); a phishing-resistant minimum, which a password never meets, is
    /// invalid_grant; the same password works for a client without a minimum.
    /// </summary>
    [Fact]
    public async Task MinimumAcr_PasswordGrantWithOneFactor_SetsUpAnApp_OrIsInvalidGrant()
    {
        var email = await CreateUserAsync();

        var refused = await Http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = MinimumAcrServer.PasskeyClientId, ClientSecret = MinimumAcrServer.Secret, UserName = email,
            Password = Password, Scope = "openid",
        });
        var held = await Http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = MinimumAcrServer.ClientId, ClientSecret = MinimumAcrServer.Secret, UserName = email, Password = Password,
            Scope = "openid",
        });
        var secret = held.Json?.GetProperty("enrollment").GetProperty("secret").GetString();
        var finished = await Http.RequestTokenAsync(new TokenRequest
        {
            Address = "/connect/token", ClientId = MinimumAcrServer.ClientId, ClientSecret = MinimumAcrServer.Secret,
            GrantType = "urn:identity:params:oauth:grant-type:mfa-otp",
            Parameters = { { "mfa_token", held.Json!.Value.GetProperty("mfa_token").GetString()! }, { "otp", Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow) }, { "scope", "openid" } },
        });
        var elsewhere = await PasswordGrantAsync(email);

        Assert.Equal("mfa_required", held.Error);
        Assert.False(finished.IsError, finished.Raw);
        Assert.Equal("http://schemas.openid.net/pape/policies/2007/06/multi-factor", new JsonWebToken(finished.IdentityToken).GetPayloadValue<string>("acr"));
        Assert.Equal("invalid_grant", refused.Error);
        Assert.Contains("passkey", refused.ErrorDescription);
        // The account has a second factor now: the same password alone is held for a code (no setup) wherever MFA is asked.
        Assert.Equal("mfa_required", elsewhere.Error);
    }
}
