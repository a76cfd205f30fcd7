using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Playwright;

namespace Identity.Server.Tests.Federation;

/// <summary>
/// The pages in a real browser (Chromium): a user goes from the client app to this server's login page, through
/// the external provider's login page (a second server), and back to the app with a code, clicking what they see.
/// </summary>
public sealed class BrowserTests(FederatedServer server, Chromium chromium) : ServerTests<FederatedServer>(server), IClassFixture<Chromium>
{
    [Fact]
    public async Task ExternalSignIn_ThroughBothLoginPages_EndsAtTheAppWithACode()
    {
        var email = $"chromium-{Guid.NewGuid():N}@browsercorp.test";
        await Factory.CreateProviderUserAsync(email, verified: true);
        var (verifier, challenge) = Pkce.New();
        var start = QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Web, ["redirect_uri"] = ServerFactory.WebRedirect, ["response_type"] = "code",
            ["scope"] = "openid profile email identity", ["state"] = "chromium", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        });
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var arrived = await AppRedirectAsync(page, ServerFactory.WebRedirect);

        await page.GotoAsync(start);
        Assert.Equal(Factory.Address.Authority, new Uri(page.Url).Authority);
        await page.GetByRole(AriaRole.Link, new() { Name = $"Sign in with {FederatedServer.ProviderDisplayName}" }).ClickAsync();
        await LandedAsync(page, url => new Uri(url).Authority == Factory.UpstreamAddress.Authority);
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        var back = await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var query = QueryHelpers.ParseQuery(back.Query);
        Assert.Equal("chromium", query["state"].ToString());
        var tokens = await Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            Code = query["code"].ToString(), RedirectUri = ServerFactory.WebRedirect, CodeVerifier = verifier,
        });
        Assert.False(tokens.IsError, tokens.Error);
        var jwt = await ValidateJwtAsync(tokens.AccessToken!, "identity");
        Assert.Equal(email, jwt.GetClaim("email").Value);
        Assert.Equal(FederatedServer.Provider, jwt.GetClaim("idp").Value);
    }

    [Fact]
    public async Task PasswordSignIn_LoginAndConsentPages_EndAtTheAppWithACode()
    {
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var (back, verifier) = await SpaPasswordSignInAsync(page);

        var tokens = await SpaTokensAsync(back, verifier);
        Assert.False(tokens.IsError, tokens.Error);
        Assert.Equal(["pwd"], (await ValidateJwtAsync(tokens.AccessToken!, "identity")).GetPayloadValue<string[]>("amr"));
    }

    /// <summary>
    /// A single-page app redeems its code and calls userinfo from its own origin (the origin of its redirect URI), as
    /// browsers allow only when this server names that origin (CORS); a page of an origin no client registered reads
    /// the public discovery document but none of those answers.
    /// </summary>
    [Fact]
    public async Task Spa_RedeemsItsCodeAndCallsUserInfo_FromItsOwnOrigin_AnotherOriginCannotReadTheAnswers()
    {
        // The app pages are served by the test (not from a loopback address), so Chromium's local network access
        // prompt is answered yes up front, as a user would: what remains to pass or block is CORS alone.
        await using var context = await chromium.Browser.NewContextAsync(new() { Permissions = ["local-network-access"] });
        var page = await context.NewPageAsync();
        var (back, verifier) = await SpaPasswordSignInAsync(page);
        var tokenUrl = new Uri(Factory.Address, "connect/token").ToString();
        var userInfoUrl = new Uri(Factory.Address, "connect/userinfo").ToString();
        const string redeem = """
            async ([tokenUrl, userInfoUrl, body]) => {
              const tokens = await (await fetch(tokenUrl, { method: "POST", body: new URLSearchParams(body) })).json();
              // The Authorization header makes the browser ask first (a preflight).
              const userInfo = await fetch(userInfoUrl, { headers: { Authorization: "Bearer " + tokens.access_token } });
              return JSON.stringify({ tokenType: tokens.token_type, status: userInfo.status, user: await userInfo.json(), requestId: userInfo.headers.get("X-Request-Id") });
            }
            """;
        var body = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["client_id"] = ServerFactory.Spa, ["code"] = QueryHelpers.ParseQuery(back.Query)["code"].ToString(),
            ["redirect_uri"] = ServerFactory.SpaRedirect, ["code_verifier"] = verifier,
        };

        var result = System.Text.Json.JsonDocument.Parse(await page.EvaluateAsync<string>(redeem, new object[] { tokenUrl, userInfoUrl, body })).RootElement;

        Assert.Equal(new Uri(ServerFactory.SpaRedirect).GetLeftPart(UriPartial.Authority), await page.EvaluateAsync<string>("location.origin"));
        Assert.Equal("Bearer", result.GetProperty("tokenType").GetString());
        Assert.Equal(200, result.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(result.GetProperty("user").GetProperty("sub").GetString()));
        Assert.False(string.IsNullOrEmpty(result.GetProperty("requestId").GetString()));

        var stranger = await context.NewPageAsync();
        const string strangerOrigin = "http://localhost:5174";
        await stranger.RouteAsync(strangerOrigin + "/**", route => route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/html", Body = "elsewhere" }));
        await stranger.GotoAsync(strangerOrigin + "/");
        const string probe = """
            async ([url, init]) => {
              try { const response = await fetch(url, init); return "read " + response.status; } catch (e) { return "blocked"; }
            }
            """;
        Assert.Equal("read 200", await stranger.EvaluateAsync<string>(probe, new object[] { new Uri(Factory.Address, ".well-known/openid-configuration").ToString(), new { } }));
        Assert.Equal("blocked", await stranger.EvaluateAsync<string>(probe, new object[] { tokenUrl, new { method = "POST", body = "grant_type=refresh_token&refresh_token=x" } }));
        Assert.Equal("blocked", await stranger.EvaluateAsync<string>(probe, new object[] { userInfoUrl, new { headers = new { Authorization = "Bearer x" } } }));
    }

    /// <summary>
    /// Two-step verification set up in the browser, as a user of an app that only sends them to the login page would:
    /// the MFA page shows a QR code (of the same key it prints) and backup codes, takes a code from the "app" (RFC 6238,
    /// computed here), and from then on the login page asks for a code; a backup code gets the SPA its tokens, with
    /// amr saying two factors. Another backup code turns it off on the same page.
    /// </summary>
    [Fact]
    public async Task Mfa_SetUpOnItsPage_IsAskedForAtTheNextLogin_AndTurnedOffWithABackupCode()
    {
        var email = await CreateUserAsync();
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(new Uri(Factory.Address, "Account/Login?ReturnUrl=%2FAccount%2FMfa").ToString());
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Set up an authenticator app" }).ClickAsync();
        var secret = await page.Locator("#secret").TextContentAsync();
        var qr = await page.GetByRole(AriaRole.Img, new() { Name = "QR code for your authenticator app" }).GetAttributeAsync("src");
        var backupCodes = await page.Locator(".backup-codes code").AllTextContentsAsync();
        var current = Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow);
        await page.GetByLabel("Code from your app").FillAsync(current == "000000" ? "111111" : "000000");
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        var wrong = await page.GetByRole(AriaRole.Alert).First.TextContentAsync();
        await page.GetByLabel("Code from your app").FillAsync(Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow));
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        var turnedOn = await page.GetByRole(AriaRole.Status).TextContentAsync();

        Assert.Contains($"secret={secret}", Otp.DecodeQr(qr!["data:image/png;base64,".Length..]));
        Assert.Equal(10, backupCodes.Count);
        Assert.Contains("not right", wrong);
        Assert.Contains("is on", turnedOn);

        await context.ClearCookiesAsync();
        var (verifier, challenge) = Pkce.New();
        var arrived = await AppRedirectAsync(page, ServerFactory.SpaRedirect);
        await page.GotoAsync(QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Spa, ["redirect_uri"] = ServerFactory.SpaRedirect, ["response_type"] = "code",
            ["scope"] = "openid identity", ["state"] = "mfa", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        }));
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await page.GetByLabel("Code from your authenticator app, or a backup code").FillAsync(backupCodes[0]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Verify" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Allow" }).ClickAsync();
        var tokens = await SpaTokensAsync(await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30)), verifier);

        Assert.False(tokens.IsError, tokens.Error);
        Assert.Contains("mfa", (await ValidateJwtAsync(tokens.AccessToken!, "identity")).GetPayloadValue<string[]>("amr"));

        await page.UnrouteAllAsync();
        await page.GotoAsync(new Uri(Factory.Address, "Account/Mfa").ToString());
        await page.GetByLabel("To turn it off, a code from your app or a backup code").FillAsync(backupCodes[1]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn off" }).ClickAsync();

        Assert.Contains("is off", await page.GetByRole(AriaRole.Status).TextContentAsync());
    }

    /// <summary>
    /// An app whose minimum_acr is multi-factor, and an account without a second factor: the login page shows the
    /// authenticator app to set up, the user types its code, and the app gets a multi-factor sign-in.
    /// </summary>
    [Fact]
    public async Task MinimumAcr_AnAccountWithoutASecondFactor_SetsUpAnAppAtTheLogin()
    {
        const string redirect = "https://strict.example.test/callback";
        var clientId = $"strict-{Guid.NewGuid():N}";
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, consent_type = "implicit", grant_types = new[] { "authorization_code" }, redirect_uris = new[] { redirect },
            scopes = new[] { "openid", "identity" }, minimum_acr = "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
        });
        Assert.Equal(System.Net.HttpStatusCode.Created, created.Status);
        var email = await CreateUserAsync();
        var (verifier, challenge) = Pkce.New();
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var arrived = await AppRedirectAsync(page, redirect);

        await page.GotoAsync(QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = clientId, ["redirect_uri"] = redirect, ["response_type"] = "code", ["scope"] = "openid identity", ["state"] = "strict",
            ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        }));
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        var told = await page.Locator("#enrollment").TextContentAsync();
        var secret = await page.Locator("#secret").TextContentAsync();
        var qr = await page.GetByRole(AriaRole.Img, new() { Name = "QR code for your authenticator app" }).GetAttributeAsync("src");
        await page.GetByLabel("Code from your authenticator app").FillAsync(Otp.Totp(Otp.Base32Decode(secret!), DateTimeOffset.UtcNow));
        await page.GetByRole(AriaRole.Button, new() { Name = "Verify" }).ClickAsync();
        var back = await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var tokens = await Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, Code = QueryHelpers.ParseQuery(back.Query)["code"].ToString(), RedirectUri = redirect,
            CodeVerifier = verifier,
        });

        Assert.Contains("two-step verification", told);
        // The image the browser rendered is the code of the key shown beside it.
        Assert.Contains($"secret={secret}", Otp.DecodeQr(qr!["data:image/png;base64,".Length..]));
        Assert.False(tokens.IsError, tokens.Error);
        Assert.Equal(["pwd", "otp", "mfa"], (await ValidateJwtAsync(tokens.AccessToken!, "identity")).GetPayloadValue<string[]>("amr"));
    }

    /// <summary>An app asks for a sign-up (prompt=create): the new user registers, consents, and the app gets its tokens.</summary>
    [Fact]
    public async Task PromptCreate_SignsUpANewUser_WhoseAppGetsTokens()
    {
        var email = $"chromium-signup-{Guid.NewGuid():N}@example.test";
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var (verifier, challenge) = Pkce.New();
        var arrived = await AppRedirectAsync(page, ServerFactory.SpaRedirect);

        await page.GotoAsync(QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Spa, ["redirect_uri"] = ServerFactory.SpaRedirect, ["response_type"] = "code", ["prompt"] = "create",
            ["scope"] = "openid email identity", ["state"] = "signup", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        }));
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Name").FillAsync("Chromium Signup");
        await page.GetByLabel("Password (at least 12 characters)").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Allow" }).ClickAsync();
        var tokens = await SpaTokensAsync(await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30)), verifier);

        Assert.False(tokens.IsError, tokens.Error);
        Assert.Equal(email, (await ValidateJwtAsync(tokens.AccessToken!, "identity")).GetClaim("email").Value);
    }

    /// <summary>
    /// The pages' Content-Security-Policy as Chromium applies it: the login page's own scripts run (its passkey button
    /// is wired up), but a script that found its way into the page without the response's nonce does not.
    /// </summary>
    [Fact]
    public async Task LoginPage_RunsItsOwnScripts_NotOnesInjectedIntoIt()
    {
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var violations = new List<string>();
        page.Console += (_, message) => { if (message.Text.Contains("Content Security Policy")) violations.Add(message.Text); };

        var response = await page.GotoAsync(new Uri(Factory.Address, "Account/Login").ToString());
        var ownScriptsRan = await page.EvaluateAsync<bool>("() => typeof passkeyButton === 'function'");
        var injectedRan = await page.EvaluateAsync<bool>("""
            async () => {
              const script = document.createElement('script');
              script.textContent = 'window.injected = true';
              document.body.appendChild(script);
              await new Promise(resolve => setTimeout(resolve, 50));
              return window.injected === true;
            }
            """);

        Assert.Contains("frame-ancestors 'none'", (await response!.AllHeadersAsync())["content-security-policy"]);
        Assert.True(ownScriptsRan);
        Assert.False(injectedRan);
        Assert.NotEmpty(violations);
    }

    /// <summary>The SPA's sign-in through the login and consent pages; the address its redirect URI was called with, and its PKCE verifier.</summary>
    /// <summary>
    /// Front-channel logout as a browser runs it: an app signed in to in Chromium sends the user to end the session;
    /// the signed-out page loads the app's front-channel logout page in an iframe, with iss and the sid of the app's
    /// identity token, and then the browser arrives at the app's post_logout_redirect_uri with its state.
    /// </summary>
    [Fact]
    public async Task SignOut_LoadsTheAppsFrontChannelLogoutPageInAFrame_ThenReturnsToTheApp()
    {
        const string site = "https://rp.example.test";
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var clientId = $"rp-{Guid.NewGuid():N}";
        var created = await ApiAsync(HttpMethod.Post, "/api/v1/clients", admin, new
        {
            client_id = clientId, @public = true, consent_type = "implicit", grant_types = new[] { "authorization_code" },
            redirect_uris = new[] { site + "/callback" }, post_logout_redirect_uris = new[] { site + "/signed-out" },
            scopes = new[] { "openid", "profile" }, frontchannel_logout_uri = site + "/frontchannel-logout",
        });
        Assert.Equal(System.Net.HttpStatusCode.Created, created.Status);
        var email = await CreateUserAsync();
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var logouts = new System.Collections.Concurrent.ConcurrentQueue<(Uri Url, bool InFrame)>();
        await context.RouteAsync(site + "/frontchannel-logout**", async route =>
        {
            logouts.Enqueue((new Uri(route.Request.Url), route.Request.Frame.ParentFrame is not null));
            await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/html", Body = "signed out of the app" });
        });
        var (verifier, challenge) = Pkce.New();
        var signedIn = await AppRedirectAsync(page, site + "/callback");
        var returned = await AppRedirectAsync(page, site + "/signed-out");

        await page.GotoAsync(new Uri(Factory.Address, AuthorizeUrl(clientId, site + "/callback",
            ("code_challenge", challenge), ("code_challenge_method", "S256"))).ToString());
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        var code = QueryHelpers.ParseQuery((await signedIn.Task.WaitAsync(TimeSpan.FromSeconds(30))).Query)["code"].ToString();
        var tokens = await Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, Code = code, RedirectUri = site + "/callback", CodeVerifier = verifier,
        });
        Assert.False(tokens.IsError, tokens.Error);
        await page.GotoAsync(QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/endsession").ToString(), new Dictionary<string, string?>
        {
            ["id_token_hint"] = tokens.IdentityToken, ["post_logout_redirect_uri"] = site + "/signed-out", ["state"] = "bye",
        }));
        var back = await returned.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var (logout, inFrame) = Assert.Single(logouts);
        var query = QueryHelpers.ParseQuery(logout.Query);
        var identityToken = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(tokens.IdentityToken);
        Assert.True(inFrame);
        Assert.Equal(identityToken.Issuer, query["iss"].ToString());
        Assert.Equal(identityToken.GetClaim("sid").Value, query["sid"].ToString());
        Assert.Equal(new Uri(site + "/signed-out?state=bye"), back);
    }

    async Task<(Uri Back, string Verifier)> SpaPasswordSignInAsync(IPage page)
    {
        var email = await CreateUserAsync();
        var (verifier, challenge) = Pkce.New();
        var start = QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Spa, ["redirect_uri"] = ServerFactory.SpaRedirect, ["response_type"] = "code",
            ["scope"] = "openid profile identity", ["state"] = "spa", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        });
        var arrived = await AppRedirectAsync(page, ServerFactory.SpaRedirect);

        await page.GotoAsync(start);
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await LandedAsync(page, url => new Uri(url).AbsolutePath == "/Account/Consent");
        await page.GetByRole(AriaRole.Button, new() { Name = "Allow" }).ClickAsync();
        var back = await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await LandedAsync(page, ServerFactory.SpaRedirect);
        return (back, verifier);
    }

    /// <summary>
    /// Passkeys end to end, with Chromium's virtual authenticator standing in for the device (it verifies the user, as
    /// a fingerprint would): the user signs in with a password, adds a passkey on the passkeys page, then signs in to
    /// an app with the passkey alone. The app's token says two factors (hwk, user, mfa). After the user removes the
    /// passkey, it signs nobody in.
    /// </summary>
    [Fact]
    public async Task Passkey_AddedOnThePasskeysPage_SignsInToAnAppWithoutAPassword()
    {
        var email = await CreateUserAsync();
        await using var context = await chromium.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var devtools = await context.NewCDPSessionAsync(page);
        await devtools.SendAsync("WebAuthn.enable");
        await devtools.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2", ["transport"] = "internal", ["hasResidentKey"] = true, ["hasUserVerification"] = true,
                ["isUserVerified"] = true, ["automaticPresenceSimulation"] = true,
            },
        });

        await page.GotoAsync(new Uri(Factory.Address, "Account/Login?ReturnUrl=%2FAccount%2FPasskeys").ToString());
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await page.GetByLabel("Name for the new passkey").FillAsync("Test laptop");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add a passkey" }).ClickAsync();
        var added = await page.GetByRole(AriaRole.Status).TextContentAsync();
        await context.ClearCookiesAsync();

        var (verifier, challenge) = Pkce.New();
        var start = QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Spa, ["redirect_uri"] = ServerFactory.SpaRedirect, ["response_type"] = "code",
            ["scope"] = "openid profile identity", ["state"] = "passkey", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        });
        var arrived = await AppRedirectAsync(page, ServerFactory.SpaRedirect);
        await page.GotoAsync(start);
        await page.GetByLabel("Keep me signed in").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey" }).ClickAsync();
        await LandedAsync(page, url => new Uri(url).AbsolutePath == "/Account/Consent");
        var session = (await context.CookiesAsync()).Single(c => c.Name == "identity.session");
        await page.GetByRole(AriaRole.Button, new() { Name = "Allow" }).ClickAsync();
        var back = await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var tokens = await SpaTokensAsync(back, verifier);
        // The redirect was caught as it was requested; the page must land on it before going elsewhere, or the
        // browser reports the next navigation as interrupted by this one.
        await LandedAsync(page, ServerFactory.SpaRedirect);

        await page.GotoAsync(new Uri(Factory.Address, "Account/Passkeys").ToString());
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove Test laptop" }).ClickAsync();
        var removed = await page.GetByRole(AriaRole.Status).TextContentAsync();
        await context.ClearCookiesAsync();
        await page.GotoAsync(new Uri(Factory.Address, "Account/Login").ToString());
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey" }).ClickAsync();
        var refused = await page.GetByRole(AriaRole.Alert).TextContentAsync();
        // A garbled answer, posted without a challenge, is refused the same way, never with an error page.
        var answered = page.WaitForResponseAsync(r => r.Request.Method == "POST" && r.Url.Contains("handler=Passkey"));
        await page.EvaluateAsync("() => { const form = document.getElementById('passkey-form'); form.Credential.value = '{\"id\":'; form.submit(); }");
        var answer = await answered;
        var garbled = await answer.TextAsync();
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={SubjectOf(tokens)}&limit=100", admin);

        Assert.Contains("Added \"Test laptop\"", added);
        Assert.True(session.Expires > 0, "\"Keep me signed in\" makes the passkey's session outlive the browser");
        Assert.False(tokens.IsError, tokens.Error);
        var jwt = await ValidateJwtAsync(tokens.AccessToken!, "identity");
        Assert.Equal(email, jwt.GetClaim("email").Value);
        Assert.Equal(["hwk", "user", "mfa"], jwt.GetPayloadValue<string[]>("amr"));
        Assert.Contains("Removed", removed);
        Assert.Contains("could not sign you in", refused);
        Assert.True(answer.Status == 200, garbled);
        Assert.True(garbled.Contains("could not sign you in"), garbled);
        var actions = audit.Body.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Contains("passkey.added", actions);
        Assert.Contains("passkey.removed", actions);
    }

    static string SubjectOf(TokenResponse tokens) => new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(tokens.AccessToken).Subject;

    /// <summary>The SPA redeems the code it was sent back with, as its library would.</summary>
    Task<TokenResponse> SpaTokensAsync(Uri back, string verifier) => Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
    {
        Address = "/connect/token", ClientId = ServerFactory.Spa, Code = QueryHelpers.ParseQuery(back.Query)["code"].ToString(),
        RedirectUri = ServerFactory.SpaRedirect, CodeVerifier = verifier,
    });

    /// <summary>
    /// Waits until the page is at <paramref name="address"/> (or where <c>arrived</c> says). By the page's address, not
    /// WaitForURLAsync: on the busy machine of a full run that timed out now and then waiting for navigation or load
    /// events, with the page already there.
    /// </summary>
    static Task LandedAsync(IPage page, string address) => LandedAsync(page, url => url.StartsWith(address, StringComparison.Ordinal));

    static async Task LandedAsync(IPage page, Func<string, bool> arrived)
    {
        for (var waited = 0; !arrived(page.Url); waited += 50)
        {
            Assert.True(waited < 30_000, $"the page stayed at {page.Url}");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// The app itself is not running: its redirect URI is answered here, and the address the browser was sent to is
    /// what the returned task completes with.
    /// </summary>
    static async Task<TaskCompletionSource<Uri>> AppRedirectAsync(IPage page, string redirectUri)
    {
        var arrived = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync(redirectUri + "**", async route =>
        {
            // Answered before the test is let go: the test's next steps must not stand between the browser and its answer.
            var url = new Uri(route.Request.Url);
            await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/html", Body = "<!doctype html><title>app</title>app" });
            arrived.TrySetResult(url);
        });
        return arrived;
    }
}
