using System.Net;
using System.Text;
using Duende.IdentityModel.Client;
using Identity.Server.Data;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Identity.Server.Tests.Federation;

/// <summary>
/// Google, GitHub and Microsoft, offline: the redirect each library builds (host, client_id, scopes, PKCE, state),
/// and for Google, whose endpoints can be set, the whole sign-in against a locally served token and userinfo answer.
/// </summary>
public sealed class SocialProviderTests(SocialProvidersServer server) : ServerTests<SocialProvidersServer>(server)
{
    static readonly Uri Https = new("https://localhost/");

    [Fact]
    public async Task Google_RedirectCarriesClientIdScopesPkceAndState()
    {
        var query = await ChallengeAsync("google", "accounts.google.com", "/o/oauth2/v2/auth");

        Assert.Equal(SocialProvidersServer.GoogleClientId, query["client_id"].ToString());
        Assert.Equal(["openid", "profile", "email"], query["scope"].ToString().Split(' '));
        Assert.Equal("code", query["response_type"].ToString());
        Assert.Equal("https://localhost/signin/google", query["redirect_uri"].ToString());
        Assert.Equal("S256", query["code_challenge_method"].ToString());
        Assert.Equal(43, query["code_challenge"].ToString().Length);
        Assert.True(query["state"].ToString().Length > 32);
    }

    [Fact]
    public async Task GitHub_RedirectCarriesClientIdScopesPkceAndState()
    {
        var query = await ChallengeAsync("github", "github.com", "/login/oauth/authorize");

        Assert.Equal(SocialProvidersServer.GitHubClientId, query["client_id"].ToString());
        Assert.Contains("user:email", query["scope"].ToString().Split(' '));
        Assert.Equal("https://localhost/signin/github", query["redirect_uri"].ToString());
        Assert.Equal("S256", query["code_challenge_method"].ToString());
        Assert.Equal(43, query["code_challenge"].ToString().Length);
        Assert.True(query["state"].ToString().Length > 32);
    }

    [Fact]
    public async Task Microsoft_RedirectCarriesClientIdScopesPkceAndState()
    {
        var query = await ChallengeAsync("microsoft", "login.microsoftonline.com", "/common/oauth2/v2.0/authorize");

        Assert.Equal(SocialProvidersServer.MicrosoftClientId, query["client_id"].ToString());
        Assert.Subset(new HashSet<string>(query["scope"].ToString().Split(' ')), new HashSet<string> { "openid", "profile", "email" });
        Assert.Equal("code", query["response_type"].ToString());
        Assert.Equal("https://localhost/signin/microsoft", query["redirect_uri"].ToString());
        Assert.Equal("S256", query["code_challenge_method"].ToString());
        Assert.Equal(43, query["code_challenge"].ToString().Length);
        Assert.False(string.IsNullOrEmpty(query["state"]));
        Assert.False(string.IsNullOrEmpty(query["nonce"]));
    }

    [Fact]
    public async Task LoginPage_OffersExactlyTheConfiguredProviders()
    {
        var page = await new Browser(Factory).OpenAsync("/Account/Login");

        Assert.Equal(["google", "github", "microsoft", SocialProvidersServer.Unreachable], page.Document!.QuerySelectorAll("a.provider").Select(a => a.GetAttribute("data-provider")));
    }

    [Fact]
    public async Task Google_SignInFromItsAnswer_FinishesTheAuthorizationWithIdp()
    {
        var email = $"g-{Guid.NewGuid():N}@gmail.com";
        var browser = new Browser(Factory, Https);
        var (verifier, challenge) = Pkce.New();
        var login = await browser.OpenAsync(QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Web, ["redirect_uri"] = ServerFactory.WebRedirect, ["response_type"] = "code",
            ["scope"] = "openid email profile identity", ["state"] = "xyz", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        }));
        var google = await browser.OpenAsync(login.Document!.QuerySelector("a.provider[data-provider=google]")!.GetAttribute("href")!);
        var state = QueryHelpers.ParseQuery(google.LeftTo!.Query)["state"].ToString();

        // Google sends the browser back with a code; the server redeems it at the (local) token endpoint.
        var code = Factory.Google.Issue(new LocalProvider.Account("google-sub-" + Guid.NewGuid().ToString("N"), email, true, "Gail Google"));
        var back = await browser.OpenAsync($"/signin/google?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(state)}");

        Assert.True(back.LeftTo is not null, $"stopped at {back.Url}: {back.Document?.Body?.TextContent}");
        Assert.Equal(new Uri(ServerFactory.WebRedirect).Authority, back.LeftTo!.Authority);
        var redeemed = Factory.Google.TokenRequests.Last(r => r.GetValueOrDefault("code") == code);
        Assert.Equal(43, redeemed["code_verifier"].Length);
        // The code was issued to https://localhost/, so it is redeemed there.
        var tokens = await Factory.CreateClient(new() { BaseAddress = Https }).RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, RedirectUri = ServerFactory.WebRedirect,
            Code = QueryHelpers.ParseQuery(back.LeftTo.Query)["code"].ToString(), CodeVerifier = verifier,
        });
        Assert.False(tokens.IsError, tokens.Error);
        var jwt = new JsonWebToken(tokens.AccessToken);
        Assert.Equal("google", jwt.GetClaim("idp").Value);
        Assert.Equal(["fed"], jwt.GetPayloadValue<string[]>("amr"));
        Assert.Equal(email, jwt.GetClaim("email").Value);
        // A free-mail address forms no organization.
        Assert.False(jwt.TryGetClaim("org_id", out _));
    }

    [Fact]
    public async Task Microsoft_SignInFromItsAnswer_ValidatesTheIdentityTokenAndCreatesTheUser()
    {
        var email = $"ms-{Guid.NewGuid():N}@contoso.test";
        var browser = new Browser(Factory, Https);
        var microsoft = await browser.OpenAsync("/Account/External/microsoft?returnUrl=%2FAccount%2FLogin");
        var query = QueryHelpers.ParseQuery(microsoft.LeftTo!.Query);

        // Microsoft sends the browser back with a code; its identity token must carry the nonce the server asked for.
        var code = Factory.Microsoft.Issue(new LocalProvider.Account(Guid.NewGuid().ToString(), email, false, "Mia Microsoft",
            Nonce: query["nonce"].ToString(), TenantId: Guid.NewGuid().ToString()));
        var back = await browser.OpenAsync($"/signin/microsoft?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(query["state"].ToString())}");

        Assert.True(back.Status == HttpStatusCode.OK && back.Url.AbsolutePath == "/Account/Login", $"{back.Status} {back.Url}: {back.Body}");
        var redeemed = Factory.Microsoft.TokenRequests.Last(r => r.GetValueOrDefault("code") == code);
        Assert.Equal(43, redeemed["code_verifier"].Length);
        await using var scope = Factory.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var user = await users.FindByEmailAsync(email);
        Assert.NotNull(user);
        Assert.False(user.EmailConfirmed);
        Assert.Equal("microsoft", (await users.GetLoginsAsync(user)).Single().LoginProvider);
    }

    [Fact]
    public async Task Microsoft_IdentityTokenWithAnotherNonce_IsRefused()
    {
        var email = $"ms-{Guid.NewGuid():N}@contoso.test";
        var browser = new Browser(Factory, Https);
        var microsoft = await browser.OpenAsync("/Account/External/microsoft?returnUrl=%2F");
        var state = QueryHelpers.ParseQuery(microsoft.LeftTo!.Query)["state"].ToString();
        var code = Factory.Microsoft.Issue(new LocalProvider.Account(Guid.NewGuid().ToString(), email, false, "Replayed",
            Nonce: "a-nonce-from-another-sign-in", TenantId: Guid.NewGuid().ToString()));

        var back = await browser.OpenAsync($"/signin/microsoft?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(state)}");

        Assert.Equal("/Account/Login", back.Url.AbsolutePath);
        Assert.Contains("did not complete", back.Document!.Body!.TextContent);
        await using var scope = Factory.Services.CreateAsyncScope();
        Assert.Null(await scope.ServiceProvider.GetRequiredService<UserManager<User>>().FindByEmailAsync(email));
    }

    [Fact]
    public async Task GitHub_SignInFromItsAnswer_CreatesTheUser()
    {
        var email = $"octo-{Guid.NewGuid():N}@octo.test";
        var browser = new Browser(Factory, Https);
        var github = await browser.OpenAsync("/Account/External/github?returnUrl=%2FAccount%2FLogin");
        var state = QueryHelpers.ParseQuery(github.LeftTo!.Query)["state"].ToString();
        var code = Factory.GitHub.Issue(new GitHubApi.Account(Random.Shared.NextInt64(1, long.MaxValue), "octo", "Octo Cat", null, email, true));

        // GitHub names itself in its answer (RFC 9207), as OpenIddict requires.
        var back = await browser.OpenAsync($"/signin/github?code={code}&state={Uri.EscapeDataString(state)}&iss={Uri.EscapeDataString("https://github.com/login/oauth")}");

        Assert.True(back.Status == HttpStatusCode.OK && back.Url.AbsolutePath == "/Account/Login", $"{back.Status} {back.Url}: {back.Body}");
        Assert.Contains("POST https://github.com/login/oauth/access_token", Factory.GitHub.Requests);
        await using var scope = Factory.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var user = await users.FindByEmailAsync(email);
        Assert.True(user is not null, $"no account for {email}; GitHub was asked: {string.Join(", ", Factory.GitHub.Requests)}; page: {back.Document?.Body?.TextContent}");
        Assert.Equal("github", (await users.GetLoginsAsync(user)).Single().LoginProvider);
        // The address is private on the profile: it came from the emails API, with GitHub's verified flag.
        Assert.Contains("GET https://api.github.com/user/emails", Factory.GitHub.Requests);
        Assert.True(user.EmailConfirmed);
    }

    [Fact]
    public async Task OAuthApi_GitHub_VerifiedPrimaryEmailLinksTheExistingAccount()
    {
        var email = await CreateUserAsync();
        var (verifier, challenge) = Pkce.New();
        var started = await ApiAsync(HttpMethod.Get,
            $"/api/v1/auth/oauth/github?redirect_uri={Uri.EscapeDataString(SocialProvidersServer.AppRedirect)}&code_challenge={challenge}&code_challenge_method=S256");
        var url = new Uri(started.Body.GetProperty("authorization_url").GetString()!);
        var code = Factory.GitHub.Issue(new GitHubApi.Account(Random.Shared.NextInt64(1, long.MaxValue), "linked", "Linked Octo", null, email, true));

        var finished = await ApiAsync(HttpMethod.Post, "/api/v1/auth/oauth/github/callback",
            body: new { code, state = started.Body.GetProperty("state").GetString(), code_verifier = verifier });

        Assert.Equal("github.com", url.Host);
        Assert.Equal("/login/oauth/authorize", url.AbsolutePath);
        Assert.True(finished.Status == HttpStatusCode.OK, finished.Body.ToString());
        Assert.Equal(email, finished.Body.GetProperty("user").GetProperty("email").GetString());
        await using var scope = Factory.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        Assert.Equal("github", (await users.GetLoginsAsync((await users.FindByEmailAsync(email))!)).Single().LoginProvider);
    }

    [Fact]
    public async Task GitHub_ForgedState_IsSentBackToTheLoginPage()
    {
        var browser = new Browser(Factory, Https);
        await browser.OpenAsync("/Account/External/github");
        var code = Factory.GitHub.Issue(new GitHubApi.Account(7, "forger", "Forger", null, "forger@octo.test", true));

        var back = await browser.OpenAsync($"/signin/github?code={code}&state=forged&iss={Uri.EscapeDataString("https://github.com/login/oauth")}");

        Assert.Equal("/Account/Login", back.Url.AbsolutePath);
        Assert.Contains("did not complete", back.Document!.Body!.TextContent);
        Assert.DoesNotContain("POST https://github.com/login/oauth/access_token", Factory.GitHub.Requests.Where(r => r.Contains(code)));
    }

    [Fact]
    public async Task ExternalSignIn_ForeignReturnUrl_IsNeverFollowed()
    {
        var browser = new Browser(Factory, Https);
        var google = await browser.OpenAsync("/Account/External/google?returnUrl=" + Uri.EscapeDataString("https://evil.example/phish"));
        var state = QueryHelpers.ParseQuery(google.LeftTo!.Query)["state"].ToString();
        var code = Factory.Google.Issue(new LocalProvider.Account("redirect-" + Guid.NewGuid().ToString("N"), $"r-{Guid.NewGuid():N}@example.test", true, "R"));

        var back = await browser.OpenAsync($"/signin/google?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(state)}");

        Assert.Null(back.LeftTo);
        Assert.Equal("localhost", back.Url.Host);
        Assert.Equal("/", back.Url.AbsolutePath);
    }

    [Fact]
    public async Task Google_ForgedState_IsSentBackToTheLoginPage()
    {
        var browser = new Browser(Factory, Https);
        await browser.OpenAsync("/Account/External/google");
        var code = Factory.Google.Issue(new LocalProvider.Account("forged", "forged@example.test", true, "Forged"));

        var back = await browser.OpenAsync($"/signin/google?code={code}&state=forged");

        Assert.Equal("/Account/Login", back.Url.AbsolutePath);
        Assert.Contains("did not complete", back.Document!.Body!.TextContent);
        Assert.DoesNotContain(Factory.Google.TokenRequests, r => r.GetValueOrDefault("code") == code);
        var audit = await ApiAsync(HttpMethod.Get, "/api/v1/audit?action=auth.failed&limit=100", await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword));
        Assert.Contains(audit.Body.GetProperty("entries").EnumerateArray(), e => e.GetRawText().Contains("external_sign_in_failed"));
    }

    [Fact]
    public async Task OAuthApi_Google_AuthorizationUrlThenCallbackGiveTokens()
    {
        var (verifier, challenge) = Pkce.New();
        var started = await ApiAsync(HttpMethod.Get,
            $"/api/v1/auth/oauth/google?redirect_uri={Uri.EscapeDataString(SocialProvidersServer.AppRedirect)}&code_challenge={challenge}&code_challenge_method=S256");
        var url = new Uri(started.Body.GetProperty("authorization_url").GetString()!);
        var query = QueryHelpers.ParseQuery(url.Query);
        var email = $"api-{Guid.NewGuid():N}@example.test";
        var code = Factory.Google.Issue(new LocalProvider.Account("api-" + Guid.NewGuid().ToString("N"), email, true, "Api User"));

        var finished = await ApiAsync(HttpMethod.Post, "/api/v1/auth/oauth/google/callback",
            body: new { code, state = started.Body.GetProperty("state").GetString(), code_verifier = verifier });

        Assert.Equal("accounts.google.com", url.Host);
        Assert.Equal(SocialProvidersServer.GoogleClientId, query["client_id"].ToString());
        Assert.Equal(SocialProvidersServer.AppRedirect, query["redirect_uri"].ToString());
        Assert.Equal(challenge, query["code_challenge"].ToString());
        Assert.True(finished.Status == HttpStatusCode.OK, finished.Body.ToString());
        Assert.Equal(email, finished.Body.GetProperty("user").GetProperty("email").GetString());
        var redeemed = Factory.Google.TokenRequests.Last(r => r.GetValueOrDefault("code") == code);
        Assert.Equal(verifier, redeemed["code_verifier"]);
        Assert.Equal(SocialProvidersServer.AppRedirect, redeemed["redirect_uri"]);
        await using var scope = Factory.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        Assert.Equal("google", (await users.GetLoginsAsync((await users.FindByEmailAsync(email))!)).Single().LoginProvider);
    }

    [Fact]
    public async Task UnreachableProvider_BackToTheLoginPageOrA502_NeverA500()
    {
        var page = await new Browser(Factory, Https).OpenAsync($"/Account/External/{SocialProvidersServer.Unreachable}?returnUrl=%2F");
        var api = await ApiAsync(HttpMethod.Get, $"/api/v1/auth/oauth/{SocialProvidersServer.Unreachable}" +
            $"?redirect_uri={Uri.EscapeDataString(SocialProvidersServer.AppRedirect)}&code_challenge={Pkce.New().Challenge}&code_challenge_method=S256");

        Assert.Equal("/Account/Login", page.Url.AbsolutePath);
        Assert.Contains("did not complete", page.Document!.Body!.TextContent);
        Assert.Equal(HttpStatusCode.BadGateway, api.Status);
        Assert.Equal("PROVIDER_UNAVAILABLE", ErrorCode(api));
    }

    [Fact]
    public async Task OAuthApi_ProviderOutageAtTheCallback_Is502NotTheUsersFault()
    {
        var (verifier, challenge) = Pkce.New();
        var started = await ApiAsync(HttpMethod.Get,
            $"/api/v1/auth/oauth/google?redirect_uri={Uri.EscapeDataString(SocialProvidersServer.AppRedirect)}&code_challenge={challenge}&code_challenge_method=S256");

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/auth/oauth/google/callback",
            body: new { code = LocalProvider.OutageCode, state = started.Body.GetProperty("state").GetString(), code_verifier = verifier });

        Assert.Equal(HttpStatusCode.BadGateway, answer.Status);
        Assert.Equal("PROVIDER_UNAVAILABLE", ErrorCode(answer));
        Assert.Equal("provider_unavailable", answer.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task OAuthApi_CodeTheProviderRefuses_Is401AndCreatesNobody()
    {
        var (verifier, challenge) = Pkce.New();
        var started = await ApiAsync(HttpMethod.Get,
            $"/api/v1/auth/oauth/google?redirect_uri={Uri.EscapeDataString(SocialProvidersServer.AppRedirect)}&code_challenge={challenge}&code_challenge_method=S256");

        var answer = await ApiAsync(HttpMethod.Post, "/api/v1/auth/oauth/google/callback",
            body: new { code = "never-issued", state = started.Body.GetProperty("state").GetString(), code_verifier = verifier });

        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.Equal("INVALID_CREDENTIALS", ErrorCode(answer));
    }

    /// <summary>Starts the provider's sign-in from the login page's button; the query of the redirect to the provider.</summary>
    async Task<Dictionary<string, StringValues>> ChallengeAsync(string provider, string host, string path)
    {
        var page = await new Browser(Factory, Https).OpenAsync($"/Account/External/{provider}?returnUrl=%2F");

        Assert.True(page.LeftTo is not null, $"{page.Status} {page.Url}: {page.Body}");
        Assert.Equal(Uri.UriSchemeHttps, page.LeftTo!.Scheme);
        Assert.Equal(host, page.LeftTo.Host);
        Assert.Equal(path, page.LeftTo.AbsolutePath);
        return QueryHelpers.ParseQuery(page.LeftTo.Query);
    }
}
