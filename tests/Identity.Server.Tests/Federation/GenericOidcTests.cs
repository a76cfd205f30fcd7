using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.Tests.Federation;

/// <summary>
/// Sign-in through an external OpenID provider, end to end and offline: the provider is a second instance of this
/// server on 127.0.0.1, reached by the OpenIddict client (login page) and by the auth API's back channel.
/// </summary>
public sealed class GenericOidcTests(FederatedServer server) : ServerTests<FederatedServer>(server)
{
    const string WebScopes = "openid profile email roles identity";

    // --- the login page ------------------------------------------------------------------------------------------

    [Fact]
    public async Task LoginPage_FirstExternalSignIn_CreatesTheUserAndFinishesTheAuthorization()
    {
        var email = await UpstreamUserAsync("newcorp-" + Guid.NewGuid().ToString("N")[..8] + ".test", verified: true);
        var browser = NewBrowser();

        var (back, verifier) = await AuthorizeThroughProviderAsync(browser, email);
        var tokens = await RedeemAsync(back, verifier);

        Assert.False(tokens.IsError, tokens.Error);
        var jwt = await ValidateJwtAsync(tokens.AccessToken!, "identity");
        Assert.Equal(email, jwt.GetClaim("email").Value);
        Assert.Equal(FederatedServer.Provider, jwt.GetClaim("idp").Value);
        Assert.Equal(["fed"], jwt.GetPayloadValue<string[]>("amr"));
        Assert.Equal(email.Split('@')[1], jwt.GetClaim("org_domain").Value);
        var user = await LocalUserAsync(email);
        Assert.True(user.EmailConfirmed);
        Assert.Null(user.PasswordHash);
        Assert.Equal(HttpStatusCode.OK, (await CallApiAsync(tokens.AccessToken!)).StatusCode);
    }

    [Fact]
    public async Task LoginPage_SecondSignIn_UsesTheSameAccount()
    {
        var email = await UpstreamUserAsync("example.test", verified: true);
        var (first, firstVerifier) = await AuthorizeThroughProviderAsync(NewBrowser(), email);
        var (second, secondVerifier) = await AuthorizeThroughProviderAsync(NewBrowser(), email);

        var a = await ValidateJwtAsync((await RedeemAsync(first, firstVerifier)).AccessToken!, "identity");
        var b = await ValidateJwtAsync((await RedeemAsync(second, secondVerifier)).AccessToken!, "identity");

        Assert.Equal(a.Subject, b.Subject);
        await using var scope = Factory.Services.CreateAsyncScope();
        Assert.Equal(1, scope.ServiceProvider.GetRequiredService<IdentityDbContext>().Users.Count(u => u.Email == email));
    }

    [Fact]
    public async Task LoginPage_VerifiedEmailOfAnExistingAccount_LinksItWithoutAsking()
    {
        var email = await CreateUserAsync();
        await UpstreamUserAsync(email, verified: true, exactEmail: true);
        var local = await LocalUserAsync(email);

        var (back, verifier) = await AuthorizeThroughProviderAsync(NewBrowser(), email);
        var jwt = await ValidateJwtAsync((await RedeemAsync(back, verifier)).AccessToken!, "identity");

        Assert.Equal(local.Id, jwt.Subject);
        Assert.Contains(await LoginsAsync(email), l => l == FederatedServer.Provider);
    }

    [Fact]
    public async Task LoginPage_UnverifiedEmailOfAnExistingAccount_AsksForItsPasswordBeforeLinking()
    {
        var email = await CreateUserAsync();
        await UpstreamUserAsync(email, verified: false, exactEmail: true);
        var browser = NewBrowser();
        var (start, verifier) = AuthorizeUrl();

        var linkPage = await ThroughProviderAsync(browser, start, email);
        Assert.Contains("already exists", linkPage.Document!.Body!.TextContent);
        Assert.Empty(await LoginsAsync(email));

        var wrong = await browser.SubmitAsync(linkPage, new Dictionary<string, string> { ["Password"] = "not the password at all" });
        Assert.Contains("not right", wrong.Document!.Body!.TextContent);
        Assert.Empty(await LoginsAsync(email));

        var back = await browser.SubmitAsync(wrong, new Dictionary<string, string> { ["Password"] = Password });
        var jwt = await ValidateJwtAsync((await RedeemAsync(back, verifier)).AccessToken!, "identity");
        Assert.Equal((await LocalUserAsync(email)).Id, jwt.Subject);
        Assert.Equal([FederatedServer.Provider], await LoginsAsync(email));
    }

    /// <summary>
    /// Pre-hijacking: someone registers the victim's address here first, with a password of their choosing. The
    /// victim's provider login vouches for the address, but the account's own email was never verified: it is not
    /// linked until the account's password is given, or the attacker's password would keep working on it.
    /// </summary>
    [Fact]
    public async Task LoginPage_VerifiedEmailOfAnUnverifiedAccount_AsksForItsPasswordBeforeLinking()
    {
        var email = $"victim-{Guid.NewGuid():N}@example.test";
        var registered = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password });
        await UpstreamUserAsync(email, verified: true, exactEmail: true);
        var (start, _) = AuthorizeUrl();

        var linkPage = await ThroughProviderAsync(NewBrowser(), start, email);

        Assert.Equal(HttpStatusCode.OK, registered.Status);
        Assert.Contains("already exists", linkPage.Document!.Body!.TextContent);
        Assert.Empty(await LoginsAsync(email));
    }

    [Fact]
    public async Task LoginPage_AccountWithMfa_AsksForTheCodeAfterTheProvider()
    {
        var email = await CreateUserAsync();
        await UpstreamUserAsync(email, verified: true, exactEmail: true);
        var key = await EnrollTotpAsync(email);
        var browser = NewBrowser();
        var (start, verifier) = AuthorizeUrl();

        var codePage = await ThroughProviderAsync(browser, start, email);
        Assert.NotNull(codePage.Document!.QuerySelector("input[name=Code]"));
        var back = await browser.SubmitAsync(codePage, new Dictionary<string, string> { ["Code"] = Otp.Totp(key, DateTimeOffset.UtcNow.AddSeconds(30)) });

        var jwt = await ValidateJwtAsync((await RedeemAsync(back, verifier)).AccessToken!, "identity");
        Assert.Equal(["fed", "otp", "mfa"], jwt.GetPayloadValue<string[]>("amr"));
        Assert.Equal(FederatedServer.Provider, jwt.GetClaim("idp").Value);
    }

    /// <summary>
    /// An app that names the provider (idp_hint, or Keycloak's kc_idp_hint) sends the user straight there, past the
    /// login page, and gets the sign-in back; a name the server does not have shows the login page as usual.
    /// </summary>
    [Theory]
    [InlineData("idp_hint")]
    [InlineData("kc_idp_hint")]
    public async Task Authorize_WithAProviderHint_GoesStraightToTheProvider(string parameter)
    {
        var email = await CreateUserAsync();
        await UpstreamUserAsync(email, verified: true, exactEmail: true);
        var browser = NewBrowser();
        var (start, verifier) = AuthorizeUrl();

        var providerLogin = await browser.OpenAsync(QueryHelpers.AddQueryString(start, parameter, FederatedServer.Provider));
        var back = await browser.LoginAsync(providerLogin, email, Password);
        var jwt = await ValidateJwtAsync((await RedeemAsync(back, verifier)).AccessToken!, "identity");
        var unknown = await NewBrowser().OpenAsync(QueryHelpers.AddQueryString(AuthorizeUrl().Url, parameter, "no-such-provider"));

        Assert.Equal(Factory.UpstreamAddress.Authority, providerLogin.Url.Authority);
        Assert.Equal(FederatedServer.Provider, jwt.GetClaim("idp").Value);
        Assert.Equal((await LocalUserAsync(email)).Id, jwt.Subject);
        Assert.Equal("/Account/Login", unknown.Url.AbsolutePath);
    }

    [Fact]
    public async Task LoginPage_ShowsOneButtonPerConfiguredProvider()
    {
        var page = await NewBrowser().OpenAsync("/Account/Login");

        var buttons = page.Document!.QuerySelectorAll("a.provider").Select(a => a.GetAttribute("data-provider")).ToList();
        Assert.Equal([FederatedServer.Provider], buttons);
        Assert.Contains($"Sign in with {FederatedServer.ProviderDisplayName}", page.Document.Body!.TextContent);
    }

    // --- the auth API (first-party apps) -------------------------------------------------------------------------

    [Fact]
    public async Task OAuthApi_CodeAndVerifier_GiveTheSameTokensAsLogin()
    {
        var email = await UpstreamUserAsync("example.test", verified: true);
        var (verifier, challenge) = Pkce.New();

        var started = await ApiAsync(HttpMethod.Get, StartPath(challenge));
        Assert.Equal(HttpStatusCode.OK, started.Status);
        var authorizationUrl = new Uri(started.Body.GetProperty("authorization_url").GetString()!);
        var state = started.Body.GetProperty("state").GetString()!;
        Assert.Equal(Factory.UpstreamAddress.Authority, authorizationUrl.Authority);
        var query = QueryHelpers.ParseQuery(authorizationUrl.Query);
        Assert.Equal(FederatedServer.AppRedirect, query["redirect_uri"].ToString());
        Assert.Equal(challenge, query["code_challenge"].ToString());
        Assert.Equal(state, query["state"].ToString());

        var code = await CodeFromProviderAsync(authorizationUrl, email, state);
        var finished = await ApiAsync(HttpMethod.Post, CallbackPath, body: new { code, state, code_verifier = verifier });
        var replayed = await ApiAsync(HttpMethod.Post, CallbackPath, body: new { code, state, code_verifier = verifier });

        Assert.True(finished.Status == HttpStatusCode.OK, finished.Body.ToString());
        Assert.Equal("Bearer", finished.Body.GetProperty("token_type").GetString());
        Assert.Equal(email, finished.Body.GetProperty("user").GetProperty("email").GetString());
        var jwt = await ValidateJwtAsync(finished.Body.GetProperty("access_token").GetString()!, "identity");
        Assert.Equal(FederatedServer.Provider, jwt.GetClaim("idp").Value);
        Assert.Equal(["fed"], jwt.GetPayloadValue<string[]>("amr"));
        var refreshed = await ApiAsync(HttpMethod.Post, "/api/v1/auth/refresh", body: new { refresh_token = finished.Body.GetProperty("refresh_token").GetString() });
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);

        Assert.Equal(HttpStatusCode.BadRequest, replayed.Status);
        Assert.Equal("invalid_state", replayed.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task OAuthApi_WrongVerifier_IsRefusedAndSpendsTheState()
    {
        var email = await UpstreamUserAsync("example.test", verified: true);
        var (code, state, verifier) = await SignedInAtProviderAsync(email);

        var wrong = await ApiAsync(HttpMethod.Post, CallbackPath, body: new { code, state, code_verifier = Pkce.New().Verifier });
        var right = await ApiAsync(HttpMethod.Post, CallbackPath, body: new { code, state, code_verifier = verifier });

        Assert.Equal(HttpStatusCode.BadRequest, wrong.Status);
        Assert.Equal("invalid_code_verifier", wrong.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, right.Status);
        Assert.Equal(0, await UsersWithEmailAsync(email));
    }

    [Fact]
    public async Task OAuthApi_AccountWithMfa_AnswersMfaRequiredThenVerifyGivesFedAmr()
    {
        var email = await CreateUserAsync();
        await UpstreamUserAsync(email, verified: true, exactEmail: true);
        var key = await EnrollTotpAsync(email);
        var (code, state, verifier) = await SignedInAtProviderAsync(email);

        var held = await ApiAsync(HttpMethod.Post, CallbackPath, body: new { code, state, code_verifier = verifier });
        Assert.Equal(HttpStatusCode.OK, held.Status);
        Assert.True(held.Body.GetProperty("mfa_required").GetBoolean());
        Assert.False(held.Body.TryGetProperty("access_token", out _));
        var verified = await ApiAsync(HttpMethod.Post, "/api/v1/auth/mfa/verify", body: new
        {
            mfa_token = held.Body.GetProperty("mfa_token").GetString(), token = Otp.Totp(key, DateTimeOffset.UtcNow.AddSeconds(30)), method = "totp",
        });

        Assert.Equal(HttpStatusCode.OK, verified.Status);
        var jwt = await ValidateJwtAsync(verified.Body.GetProperty("access_token").GetString()!, "identity");
        Assert.Equal(["fed", "otp", "mfa"], jwt.GetPayloadValue<string[]>("amr"));
        Assert.Equal(FederatedServer.Provider, jwt.GetClaim("idp").Value);
    }

    [Fact]
    public async Task OAuthApi_UnverifiedEmailOfAnExistingAccount_IsAConflictNotATakeover()
    {
        var email = await CreateUserAsync();
        await UpstreamUserAsync(email, verified: false, exactEmail: true);
        var (code, state, verifier) = await SignedInAtProviderAsync(email);

        var answer = await ApiAsync(HttpMethod.Post, CallbackPath, body: new { code, state, code_verifier = verifier });

        Assert.Equal(HttpStatusCode.Conflict, answer.Status);
        Assert.Equal("CONFLICT", ErrorCode(answer));
        Assert.Equal("link_required", answer.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Empty(await LoginsAsync(email));
    }

    [Theory]
    [InlineData("/api/v1/auth/oauth/nosuch?redirect_uri=http%3A%2F%2Flocalhost%3A5173%2Foauth-callback&code_challenge_method=S256&code_challenge=" + ValidChallenge, 404, "NOT_FOUND")]
    [InlineData("/api/v1/auth/oauth/upstream?redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_challenge_method=S256&code_challenge=" + ValidChallenge, 400, "INVALID_REQUEST")]
    [InlineData("/api/v1/auth/oauth/upstream?redirect_uri=http%3A%2F%2Flocalhost%3A5173%2Foauth-callback%2F&code_challenge_method=S256&code_challenge=" + ValidChallenge, 400, "INVALID_REQUEST")]
    [InlineData("/api/v1/auth/oauth/upstream?redirect_uri=http%3A%2F%2Flocalhost%3A5173%2Foauth-callback", 400, "INVALID_REQUEST")]
    [InlineData("/api/v1/auth/oauth/upstream?redirect_uri=http%3A%2F%2Flocalhost%3A5173%2Foauth-callback&code_challenge_method=plain&code_challenge=" + ValidChallenge, 400, "INVALID_REQUEST")]
    [InlineData("/api/v1/auth/oauth/upstream?redirect_uri=http%3A%2F%2Flocalhost%3A5173%2Foauth-callback&code_challenge_method=S256&code_challenge=short", 400, "INVALID_REQUEST")]
    public async Task OAuthApi_BadStart_IsRefusedInTheSeedEnvelope(string path, int status, string code)
    {
        var answer = await ApiAsync(HttpMethod.Get, path);

        Assert.Equal((HttpStatusCode)status, answer.Status);
        Assert.Equal(code, ErrorCode(answer));
    }

    const string ValidChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"code\":\"x\",\"state\":\"y\"}")]
    [InlineData("[1,2]")]
    [InlineData("not json")]
    [InlineData("{\"code\":\"x\",\"state\":\"never issued\",\"code_verifier\":\"z\"}")]
    public async Task OAuthApi_BadCallback_Is400NotA500(string body)
    {
        var answer = await ApiAsync(HttpMethod.Post, CallbackPath, body: new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("INVALID_REQUEST", ErrorCode(answer));
    }

    // --- linked logins -------------------------------------------------------------------------------------------

    [Fact]
    public async Task Logins_ListedAndRemovable_ButNeverTheLastWayIn()
    {
        var email = await UpstreamUserAsync("example.test", verified: true);
        var (back, verifier) = await AuthorizeThroughProviderAsync(NewBrowser(), email);
        var token = (await RedeemAsync(back, verifier)).AccessToken!;

        var listed = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me/logins", token);
        var lastOne = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me/logins/" + FederatedServer.Provider, token);
        var unknown = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me/logins/nosuch", token);

        Assert.Equal(HttpStatusCode.OK, listed.Status);
        var login = listed.Body.GetProperty("logins").EnumerateArray().Single();
        Assert.Equal(FederatedServer.Provider, login.GetProperty("provider").GetString());
        Assert.Equal(FederatedServer.ProviderDisplayName, login.GetProperty("display_name").GetString());
        Assert.False(listed.Body.GetProperty("has_password").GetBoolean());
        Assert.Equal(HttpStatusCode.Conflict, lastOne.Status);
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        Assert.Equal([FederatedServer.Provider], await LoginsAsync(email));

        // With a password as well, the provider can go.
        await using (var scope = Factory.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
            Assert.True((await users.AddPasswordAsync((await users.FindByEmailAsync(email))!, Password)).Succeeded);
        }
        var removed = await ApiAsync(HttpMethod.Delete, "/api/v1/auth/me/logins/" + FederatedServer.Provider, token);
        Assert.Equal(HttpStatusCode.NoContent, removed.Status);
        Assert.Empty(await LoginsAsync(email));
    }

    [Fact]
    public async Task EveryStep_IsAudited()
    {
        var email = await UpstreamUserAsync("example.test", verified: true);
        var (back, verifier) = await AuthorizeThroughProviderAsync(NewBrowser(), email);
        await RedeemAsync(back, verifier);
        var user = await LocalUserAsync(email);

        await using var scope = Factory.Services.CreateAsyncScope();
        var actions = scope.ServiceProvider.GetRequiredService<IdentityDbContext>().AuditEntries
            .Where(e => e.SubjectId == user.Id).Select(e => e.Action).ToList();
        Assert.Contains("user.created", actions);
        Assert.Contains("user.login_linked", actions);
        Assert.Contains("auth.login", actions);
    }

    // --- helpers -------------------------------------------------------------------------------------------------

    static string CallbackPath => $"/api/v1/auth/oauth/{FederatedServer.Provider}/callback";

    static string StartPath(string challenge) =>
        $"/api/v1/auth/oauth/{FederatedServer.Provider}?redirect_uri={Uri.EscapeDataString(FederatedServer.AppRedirect)}&state=app-state" +
        $"&code_challenge={challenge}&code_challenge_method=S256";

    Browser NewBrowser() => new(Factory.Address, Factory.UpstreamAddress);

    /// <summary>An authorization request of the confidential "web" client, with PKCE.</summary>
    (string Url, string Verifier) AuthorizeUrl()
    {
        var (verifier, challenge) = Pkce.New();
        var url = QueryHelpers.AddQueryString(new Uri(Factory.Address, "connect/authorize").ToString(), new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Web, ["redirect_uri"] = ServerFactory.WebRedirect, ["response_type"] = "code", ["scope"] = WebScopes,
            ["state"] = "s-" + Guid.NewGuid().ToString("N"), ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        });
        return (url, verifier);
    }

    /// <summary>From the server's login page through the provider's; the page the browser ends on (or leaves from).</summary>
    async Task<Browser.Page> ThroughProviderAsync(Browser browser, string start, string email)
    {
        var login = await browser.OpenAsync(start);
        Assert.Equal(Factory.Address.Authority, login.Url.Authority);
        var button = login.Document!.QuerySelector($"a.provider[data-provider={FederatedServer.Provider}]")!.GetAttribute("href")!;
        var providerLogin = await browser.OpenAsync(new Uri(login.Url, button).ToString());
        Assert.Equal(Factory.UpstreamAddress.Authority, providerLogin.Url.Authority);
        return await browser.LoginAsync(providerLogin, email, Password);
    }

    async Task<(Browser.Page Back, string Verifier)> AuthorizeThroughProviderAsync(Browser browser, string email)
    {
        var (start, verifier) = AuthorizeUrl();
        var back = await ThroughProviderAsync(browser, start, email);
        Assert.True(back.LeftTo is not null, $"the sign-in stopped at {back.Url} ({back.Status}): {back.Body}");
        return (back, verifier);
    }

    Task<TokenResponse> RedeemAsync(Browser.Page back, string verifier)
    {
        Assert.Equal(new Uri(ServerFactory.WebRedirect).Authority, back.LeftTo!.Authority);
        return Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            Code = QueryHelpers.ParseQuery(back.LeftTo.Query)["code"].ToString(), RedirectUri = ServerFactory.WebRedirect, CodeVerifier = verifier,
        });
    }

    /// <summary>The auth API's external sign-in up to the app's callback: the code, the state and the app's verifier.</summary>
    async Task<(string Code, string State, string Verifier)> SignedInAtProviderAsync(string email)
    {
        var (verifier, challenge) = Pkce.New();
        var started = await ApiAsync(HttpMethod.Get, StartPath(challenge));
        var state = started.Body.GetProperty("state").GetString()!;
        return (await CodeFromProviderAsync(new Uri(started.Body.GetProperty("authorization_url").GetString()!), email, state), state, verifier);
    }

    /// <summary>The user signs in at the provider, which sends the browser to the app with a code.</summary>
    async Task<string> CodeFromProviderAsync(Uri authorizationUrl, string email, string state)
    {
        var browser = new Browser(Factory.UpstreamAddress);
        var back = await browser.LoginAsync(await browser.OpenAsync(authorizationUrl.ToString()), email, Password);
        Assert.True(back.LeftTo is not null, $"the provider stopped at {back.Url}: {back.Document?.Body?.TextContent}");
        Assert.Equal(FederatedServer.AppRedirect, back.LeftTo!.GetLeftPart(UriPartial.Path));
        var query = QueryHelpers.ParseQuery(back.LeftTo.Query);
        Assert.Equal(state, query["state"].ToString());
        return query["code"].ToString();
    }

    /// <summary>An account at the provider: a new address at <paramref name="domainOrEmail"/>, or that very address.</summary>
    async Task<string> UpstreamUserAsync(string domainOrEmail, bool verified, bool exactEmail = false)
    {
        var email = exactEmail ? domainOrEmail : $"fed-{Guid.NewGuid():N}@{domainOrEmail}";
        await Factory.CreateProviderUserAsync(email, verified);
        return email;
    }

    async Task<User> LocalUserAsync(string email)
    {
        await using var scope = Factory.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<UserManager<User>>().FindByEmailAsync(email))!;
    }

    async Task<int> UsersWithEmailAsync(string email)
    {
        await using var scope = Factory.Services.CreateAsyncScope();
        return scope.ServiceProvider.GetRequiredService<IdentityDbContext>().Users.Count(u => u.Email == email);
    }

    async Task<List<string>> LoginsAsync(string email)
    {
        await using var scope = Factory.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        return (await users.GetLoginsAsync((await users.FindByEmailAsync(email))!)).Select(l => l.LoginProvider).ToList();
    }
}
