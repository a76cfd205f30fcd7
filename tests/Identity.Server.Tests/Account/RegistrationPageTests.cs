using System.Net;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Tests.Account;

/// <summary>Sign-up in the browser (/Account/Register), from the login page's link or an app's prompt=create.</summary>
public sealed class RegistrationPageTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    static string AuthorizeUrl(params (string Key, string Value)[] extra) =>
        AuthorizeUrl(ServerFactory.Web, ServerFactory.WebRedirect, [("scope", "openid email"), .. extra]);

    static string NewEmail() => $"signup-{Guid.NewGuid():N}@example.test";

    [Fact]
    public async Task PromptCreate_OpensTheRegistrationPage_AndTheNewAccountGoesBackToTheAppWithACode()
    {
        var browser = new Browser(Factory);
        var email = NewEmail();

        var page = await browser.OpenAsync(AuthorizeUrl(("prompt", "create")));
        var back = await browser.SubmitAsync(page, new Dictionary<string, string> { ["Email"] = email, ["Name"] = "New Person", ["Password"] = Password });

        Assert.Equal("/Account/Register", page.Url.AbsolutePath);
        var code = QueryHelpers.ParseQuery(back.LeftTo!.Query)["code"].ToString();
        var tokens = await Http.RequestAuthorizationCodeTokenAsync(new AuthorizationCodeTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret, Code = code, RedirectUri = ServerFactory.WebRedirect,
        });
        Assert.False(tokens.IsError, tokens.Error);
        var identity = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(tokens.IdentityToken!);
        Assert.Equal(email, identity.GetClaim("email").Value);
        // Not proven yet: the verification email is what proves it.
        Assert.Equal("false", identity.GetClaim("email_verified").Value);
    }

    [Fact]
    public async Task TheLoginPage_LinksToIt_KeepingTheAppsRequest()
    {
        var browser = new Browser(Factory);

        var login = await browser.OpenAsync(AuthorizeUrl());
        var link = login.Document!.QuerySelectorAll("a").Single(a => a.TextContent == "Create an account").GetAttribute("href")!;
        var register = await browser.OpenAsync(link);
        var back = await browser.SubmitAsync(register, new Dictionary<string, string> { ["Email"] = NewEmail(), ["Password"] = Password });

        Assert.Equal("/Account/Register", register.Url.AbsolutePath);
        Assert.True(QueryHelpers.ParseQuery(back.LeftTo!.Query).ContainsKey("code"));
    }

    [Theory]
    [InlineData("taken", "already exists")]
    [InlineData("short password", "at least 12")]
    [InlineData("bad email", "valid email")]
    [InlineData("no password", "Choose a password")]
    public async Task ABadSignUp_SaysWhy_AndCreatesNothing(string flaw, string said)
    {
        var taken = await CreateUserAsync();
        var browser = new Browser(Factory);
        var email = flaw switch { "taken" => taken, "bad email" => "not-an-address", _ => NewEmail() };

        var page = await browser.SubmitAsync(await browser.OpenAsync("/Account/Register"),
            new Dictionary<string, string> { ["Email"] = email, ["Password"] = flaw switch { "short password" => "short", "no password" => "", _ => Password } });

        Assert.Equal(HttpStatusCode.OK, page.Status);
        Assert.Contains(said, page.Document!.QuerySelector("[role=alert]")!.TextContent);
        Assert.Null(page.LeftTo);
        // Nothing was created: the address is still free to register through the API.
        if (flaw != "taken" && flaw != "bad email")
        {
            var (status, _, _) = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email, password = Password });
            Assert.Equal(HttpStatusCode.OK, status);
        }
    }

    /// <summary>prompt=none promises no page; create is one: the app hears so, and nothing is shown.</summary>
    [Fact]
    public async Task PromptCreateWithNone_IsAnInvalidRequest_ForTheApp()
    {
        var browser = new Browser(Factory);

        var answer = await browser.OpenAsync(AuthorizeUrl(("prompt", "create none")));

        Assert.Equal("invalid_request", QueryHelpers.ParseQuery(answer.LeftTo!.Query)["error"].ToString());
    }

    [Fact]
    public async Task Discovery_OffersPromptCreate()
    {
        var discovery = await Http.GetDiscoveryDocumentAsync();

        Assert.Contains("create", discovery.Json!.Value.GetProperty("prompt_values_supported").EnumerateArray().Select(v => v.GetString()));
    }
}

public sealed class ClosedRegistrationServer() : ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Registration:Enabled", "false")]);

/// <summary>Identity:Registration:Enabled=false closes every door to sign-up: the page, prompt=create and the API.</summary>
public sealed class ClosedRegistrationTests(ClosedRegistrationServer server) : ServerTests<ClosedRegistrationServer>(server)
{
    [Fact]
    public async Task NoPage_NoLink_NoPromptCreate_AndTheApiSaysRegistrationIsClosed()
    {
        var browser = new Browser(Factory);

        var page = await Http.GetAsync("/Account/Register");
        var posted = await Http.PostAsync("/Account/Register", new FormUrlEncodedContent([new("Email", "x@example.test"), new("Password", Password)]));
        var login = await browser.OpenAsync("/Account/Login");
        var (status, body, _) = await ApiAsync(HttpMethod.Post, "/api/v1/auth/register", body: new { email = "closed@example.test", password = Password });
        var discovery = await Http.GetDiscoveryDocumentAsync();
        var create = await browser.OpenAsync(QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = ServerFactory.Web, ["redirect_uri"] = ServerFactory.WebRedirect, ["response_type"] = "code", ["scope"] = "openid",
            ["state"] = "s", ["prompt"] = "create",
        }));

        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, posted.StatusCode);
        Assert.DoesNotContain("Create an account", login.Body);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("registration_disabled", body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.DoesNotContain("create", discovery.Json!.Value.GetProperty("prompt_values_supported").EnumerateArray().Select(v => v.GetString()));
        // As Initiating User Registration asks of a provider that does not offer create: 400 invalid_request.
        Assert.Equal(HttpStatusCode.BadRequest, create.Status);
        Assert.Contains("invalid_request", create.Body);
    }
}
