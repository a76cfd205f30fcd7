using System.Net;
using System.Security.Cryptography;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Duende.IdentityModel.OidcClient;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Connect;

public sealed class SqliteAuthorizationCodeTests(SqliteServer server) : AuthorizationCodeTests<SqliteServer>(server);
public sealed class PostgreSqlAuthorizationCodeTests(PostgreSqlServer server) : AuthorizationCodeTests<PostgreSqlServer>(server);

/// <summary>
/// The authorization code flow as a user lives it: OidcClient builds the request and checks the answer (state,
/// PKCE, identity token signature), the login and consent pages are filled in and submitted like a browser would.
/// </summary>
public abstract class AuthorizationCodeTests<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    OidcClient SpaClient(string scope = "openid profile email roles offline_access identity") => new(new OidcClientOptions
    {
        Authority = Issuer,
        ClientId = ServerFactory.Spa,
        RedirectUri = ServerFactory.SpaRedirect,
        PostLogoutRedirectUri = ServerFactory.SpaLogoutRedirect,
        Scope = scope,
        HttpClientFactory = _ => Factory.CreateClient(),
        DisablePushedAuthorization = true,
    });

    [Fact]
    public async Task CodeFlow_ThroughLoginAndConsentPages_GivesVerifiedTokens()
    {
        var email = await CreateUserAsync();
        var client = SpaClient();
        var state = await client.PrepareLoginAsync();
        var browser = new Browser(Factory);

        var login = await browser.OpenAsync(state.StartUrl);
        var consent = await browser.LoginAsync(login, email, Password);
        Assert.Equal("/Account/Consent", consent.Url.AbsolutePath);
        Assert.Contains("Single-page app", consent.Document!.Body!.TextContent);
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);

        Assert.False(result.IsError, result.Error);
        Assert.Equal(email, result.User.FindFirst("email")?.Value);
        Assert.Equal("Test User", result.User.FindFirst("name")?.Value);
        Assert.NotNull(result.RefreshToken);
        var jwt = await ValidateJwtAsync(result.AccessToken, "identity");
        Assert.Equal(ServerFactory.Spa, jwt.GetClaim("client_id").Value);
        Assert.Equal("pwd", jwt.GetPayloadValue<string[]>("amr").Single());
        Assert.Equal(HttpStatusCode.OK, (await CallApiAsync(result.AccessToken)).StatusCode);
    }

    /// <summary>
    /// A user sees the apps they allowed and can take that back: the app's sessions end (its refresh token stops
    /// working), the consent page comes back next time, and both decisions are in the audit log.
    /// </summary>
    [Fact]
    public async Task Consent_ListedAndWithdrawn_EndsTheAppsSessions_AndIsAskedAgain()
    {
        var email = await CreateUserAsync();
        var client = SpaClient();
        var browser = new Browser(Factory);
        var state = await client.PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);
        var back = await browser.SubmitAsync(consent, button: "consent", value: "accept");
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), state);
        var token = await LoginAsync(email);

        var listed = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me/consents", token);
        var withdrawn = await ApiAsync(HttpMethod.Delete, $"/api/v1/auth/me/consents/{ServerFactory.Spa}", token);
        var again = await ApiAsync(HttpMethod.Delete, $"/api/v1/auth/me/consents/{ServerFactory.Spa}", token);
        var refreshed = await client.RefreshTokenAsync(result.RefreshToken);
        var next = await browser.OpenAsync((await client.PrepareLoginAsync()).StartUrl);

        var spa = Assert.Single(listed.Body.GetProperty("consents").EnumerateArray());
        Assert.Equal(ServerFactory.Spa, spa.GetProperty("client_id").GetString());
        Assert.Equal("Single-page app", spa.GetProperty("client_name").GetString());
        Assert.Contains("offline_access", spa.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(HttpStatusCode.NoContent, withdrawn.Status);
        Assert.Equal(HttpStatusCode.NotFound, again.Status);
        Assert.True(refreshed.IsError);
        Assert.Equal("/Account/Consent", next.Url.AbsolutePath);
        Assert.Empty((await ApiAsync(HttpMethod.Get, "/api/v1/auth/me/consents", token)).Body.GetProperty("consents").EnumerateArray());
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var id = (await ValidateJwtAsync(token, "identity")).Subject;
        foreach (var action in new[] { "consent.granted", "consent.revoked" })
            Assert.Equal(1, (await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={id}&action={action}", admin)).Body.GetProperty("total").GetInt32());
    }

    /// <summary>"Keep me signed in" on the login page makes the session cookie outlive the browser; by default it does not.</summary>
    [Fact]
    public async Task LoginPage_KeepMeSignedIn_MakesTheSessionCookiePersistent_OnlyWhenTicked()
    {
        var email = await CreateUserAsync();
        async Task<string> SessionCookieAsync(bool keep)
        {
            var browser = new Browser(Factory);
            var fields = new Dictionary<string, string> { ["Email"] = email, ["Password"] = Password };
            if (keep)
                fields["RememberMe"] = "true";
            var page = await browser.OpenAsync("/Account/Login");
            Assert.NotNull(page.Document!.QuerySelector("input[type=checkbox][name=RememberMe]"));
            await browser.SubmitAsync(page, fields);
            return browser.SetCookies.Last(c => c.StartsWith("identity.session=", StringComparison.Ordinal));
        }

        var kept = await SessionCookieAsync(keep: true);
        var browserOnly = await SessionCookieAsync(keep: false);

        var expires = DateTimeOffset.Parse(kept.Split(';').Select(p => p.Trim()).Single(p => p.StartsWith("expires=", StringComparison.OrdinalIgnoreCase))["expires=".Length..],
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromDays(13), TimeSpan.FromDays(15));
        Assert.DoesNotContain("expires=", browserOnly, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task CodeFlow_ConsentGivenOnce_IsNotAskedAgain()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var client = SpaClient();
        var first = await client.PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(first.StartUrl), email, Password);
        await browser.SubmitAsync(consent, button: "consent", value: "accept");

        var second = await client.PrepareLoginAsync();
        var page = await browser.OpenAsync(second.StartUrl);

        Assert.NotNull(page.LeftTo);
        var result = await client.ProcessResponseAsync(page.LeftTo!.ToString(), second);
        Assert.False(result.IsError, result.Error);
    }

    /// <summary>
    /// max_age (OIDC Core 3.1.2.1): a session older than it means a fresh login, once, even with max_age=0 (which no
    /// session can meet, so asking again after the login would loop); the identity token's auth_time says when.
    /// </summary>
    [Fact]
    public async Task CodeFlow_MaxAge_AsksForAFreshLoginOnce_AndTheIdentityTokenSaysWhen()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var client = SpaClient();
        var first = await client.PrepareLoginAsync();
        await browser.SubmitAsync(await browser.LoginAsync(await browser.OpenAsync(first.StartUrl), email, Password), button: "consent", value: "accept");
        await Task.Delay(TimeSpan.FromSeconds(1.1));

        var fresh = await client.PrepareLoginAsync(new Parameters { { "max_age", "0" } });
        var login = await browser.OpenAsync(fresh.StartUrl);
        var loggedIn = DateTimeOffset.UtcNow;
        var back = await browser.LoginAsync(login, email, Password);
        var result = await client.ProcessResponseAsync(back.LeftTo!.ToString(), fresh);

        Assert.Equal("/Account/Login", login.Url.AbsolutePath);
        Assert.False(result.IsError, result.Error);
        var authTime = DateTimeOffset.FromUnixTimeSeconds(new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(result.IdentityToken).GetPayloadValue<long>("auth_time"));
        Assert.InRange(authTime, loggedIn.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
    }

    [Fact]
    public async Task CodeFlow_ConsentDenied_ReturnsAccessDeniedToTheClient()
    {
        var email = await CreateUserAsync();
        var state = await SpaClient().PrepareLoginAsync();
        var browser = new Browser(Factory);
        var consent = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);

        var back = await browser.SubmitAsync(consent, button: "consent", value: "deny");

        Assert.StartsWith(ServerFactory.SpaRedirect, back.LeftTo!.ToString());
        var answer = QueryHelpers.ParseQuery(back.LeftTo.Query);
        Assert.Equal("access_denied", answer["error"]);
        Assert.False(answer.ContainsKey("code"));
    }

    [Fact]
    public async Task CodeFlow_ForgedConsentPost_IsRefused()
    {
        var email = await CreateUserAsync();
        var state = await SpaClient().PrepareLoginAsync();
        var browser = new Browser(Factory);
        var consent = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);

        // A cross-site form cannot know the antiforgery token.
        var back = await browser.SubmitAsync(consent, new Dictionary<string, string> { ["__RequestVerificationToken"] = "forged" }, "consent", "accept");

        var answer = QueryHelpers.ParseQuery(back.LeftTo!.Query);
        Assert.Equal("access_denied", answer["error"]);
        Assert.False(answer.ContainsKey("code"));
    }

    [Fact]
    public async Task CodeFlow_WrongPasswordOnLoginPage_StaysOnLoginPageWithoutSayingWhy()
    {
        var email = await CreateUserAsync();
        var state = await SpaClient().PrepareLoginAsync();
        var browser = new Browser(Factory);
        var login = await browser.OpenAsync(state.StartUrl);

        var wrong = await browser.LoginAsync(login, email, "not the password at all");
        var unknown = await browser.LoginAsync(login, "nobody@example.test", "not the password at all");

        Assert.Equal("/Account/Login", wrong.Url.AbsolutePath);
        Assert.Null(wrong.LeftTo);
        Assert.Equal(wrong.Document!.QuerySelector("[role=alert]")!.TextContent, unknown.Document!.QuerySelector("[role=alert]")!.TextContent);
    }

    [Fact]
    public async Task CodeFlow_PublicClientWithoutPkce_IsRefused()
    {
        var browser = new Browser(Factory);

        var page = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Spa, ServerFactory.SpaRedirect));

        // OpenIddict answers on its own page rather than at the client: no code leaves the server.
        Assert.Null(page.LeftTo);
        Assert.Equal(HttpStatusCode.BadRequest, page.Status);
        Assert.Contains("error:invalid_request", page.Body);
        Assert.Contains("code_challenge", page.Body);
    }

    [Fact]
    public async Task CodeFlow_PlainPkce_IsRefused()
    {
        var browser = new Browser(Factory);
        var verifier = CryptoRandom.CreateUniqueId(32);

        var page = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Spa, ServerFactory.SpaRedirect, ("code_challenge", verifier), ("code_challenge_method", "plain")));

        Assert.Null(page.LeftTo);
        Assert.Equal(HttpStatusCode.BadRequest, page.Status);
        Assert.Contains("code_challenge_method", page.Body);
    }

    [Theory]
    [InlineData("https://attacker.example/callback")]
    [InlineData("http://localhost:5173/callback/../evil")]
    [InlineData("http://localhost:5173/callback?x=1")]
    [InlineData("http://localhost:5173/CALLBACK")]
    public async Task CodeFlow_UnregisteredRedirectUri_IsNeverRedirectedTo(string redirectUri)
    {
        var browser = new Browser(Factory);

        var page = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Spa, redirectUri, ("code_challenge", Challenge(CryptoRandom.CreateUniqueId(32))), ("code_challenge_method", "S256")));

        Assert.Null(page.LeftTo);
        Assert.Equal(HttpStatusCode.BadRequest, page.Status);
    }

    [Fact]
    public async Task CodeFlow_CodeRedeemedTwice_IsRefusedAndRevokesWhatItIssued()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var verifier = CryptoRandom.CreateUniqueId(32);
        var login = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect,
            ("scope", "openid identity offline_access"), ("code_challenge", Challenge(verifier)), ("code_challenge_method", "S256")));
        var back = await browser.LoginAsync(login, email, Password);
        var code = QueryHelpers.ParseQuery(back.LeftTo!.Query)["code"].ToString();

        var first = await RedeemAsync(code, verifier);
        var second = await RedeemAsync(code, verifier);

        Assert.False(first.IsError, first.Error);
        Assert.Equal("invalid_grant", second.Error);
        Assert.False((await IntrospectAsync(first.AccessToken!)).IsActive);
        Assert.Equal("invalid_grant", (await RefreshAsync(first.RefreshToken!)).Error);
    }

    [Fact]
    public async Task CodeFlow_WrongPkceVerifier_IsRefused()
    {
        var email = await CreateUserAsync();
        var browser = new Browser(Factory);
        var login = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect,
            ("code_challenge", Challenge(CryptoRandom.CreateUniqueId(32))), ("code_challenge_method", "S256")));
        var back = await browser.LoginAsync(login, email, Password);

        var response = await RedeemAsync(QueryHelpers.ParseQuery(back.LeftTo!.Query)["code"]!, CryptoRandom.CreateUniqueId(32));

        Assert.Equal("invalid_grant", response.Error);
    }

    [Fact]
    public async Task CodeFlow_PromptNoneWithoutSession_ReturnsLoginRequired()
    {
        var browser = new Browser(Factory);

        var page = await browser.OpenAsync(AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, ("prompt", "none")));

        Assert.Equal("login_required", QueryHelpers.ParseQuery(page.LeftTo!.Query)["error"]);
    }

    [Fact]
    public async Task EndSession_SignsOutAndReturnsToTheRegisteredUri()
    {
        var email = await CreateUserAsync();
        var client = SpaClient();
        var browser = new Browser(Factory);
        var state = await client.PrepareLoginAsync();
        var consent = await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password);
        var result = await client.ProcessResponseAsync((await browser.SubmitAsync(consent, button: "consent", value: "accept")).LeftTo!.ToString(), state);

        var logout = await browser.OpenAsync(await client.PrepareLogoutAsync(new LogoutRequest { IdTokenHint = result.IdentityToken }));

        Assert.StartsWith(ServerFactory.SpaLogoutRedirect, logout.LeftTo!.ToString());
        var again = await browser.OpenAsync((await client.PrepareLoginAsync()).StartUrl);
        Assert.Equal("/Account/Login", again.Url.AbsolutePath);
        // Signing out of the app ends that sign-in: its refresh token no longer works.
        var refreshed = await client.RefreshTokenAsync(result.RefreshToken);
        Assert.Equal("invalid_grant", refreshed.Error);
    }

    /// <summary>
    /// A logout link without the app's identity token could be on any site: the user is asked, and stays signed in
    /// until they confirm on the server's own page.
    /// </summary>
    [Fact]
    public async Task EndSession_WithoutTheAppsIdentityToken_AsksFirst()
    {
        var email = await CreateUserAsync();
        var client = SpaClient();
        var browser = new Browser(Factory);
        var state = await client.PrepareLoginAsync();
        await browser.SubmitAsync(await browser.LoginAsync(await browser.OpenAsync(state.StartUrl), email, Password), button: "consent", value: "accept");

        var asked = await browser.OpenAsync("/connect/endsession");
        var stillIn = await browser.OpenAsync((await client.PrepareLoginAsync()).StartUrl);
        await browser.SubmitAsync(asked, button: "confirm", value: "yes");
        var signedOut = await browser.OpenAsync((await client.PrepareLoginAsync()).StartUrl);

        Assert.Equal("/Account/Logout", asked.Url.AbsolutePath);
        Assert.Contains(email, asked.Document!.Body!.TextContent);
        Assert.NotNull(stillIn.LeftTo);
        Assert.Equal("/Account/Login", signedOut.Url.AbsolutePath);
    }

    [Fact]
    public async Task EndSession_UnregisteredPostLogoutUri_IsNotFollowed()
    {
        var browser = new Browser(Factory);

        var page = await browser.OpenAsync($"/connect/endsession?client_id={ServerFactory.Spa}&post_logout_redirect_uri={Uri.EscapeDataString("https://attacker.example/")}");

        Assert.Null(page.LeftTo);
    }

    Task<TokenResponse> RedeemAsync(string code, string verifier) =>
        Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            Code = code,
            RedirectUri = ServerFactory.WebRedirect,
            CodeVerifier = verifier,
        });

    static string Challenge(string verifier) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(verifier)));
}
