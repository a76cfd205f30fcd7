using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Connect;

/// <summary>
/// Token exchange (RFC 8693) as a downstream API uses it: the orders API received a user's token and trades it,
/// with its own credentials, for a token to this server's API on the user's behalf.
/// </summary>
public sealed class TokenExchangeTests(SqliteServer server) : ServerTests<SqliteServer>(server)
{
    Task<TokenResponse> ExchangeAsync(string subjectToken, string scope = "identity", string clientId = ServerFactory.DownstreamAudience,
        string secret = ServerFactory.DownstreamSecret) =>
        Http.RequestTokenExchangeTokenAsync(new TokenExchangeTokenRequest
        {
            Address = "/connect/token", ClientId = clientId, ClientSecret = secret, Scope = scope,
            SubjectToken = subjectToken, SubjectTokenType = "urn:ietf:params:oauth:token-type:access_token",
        });

    [Fact]
    public async Task Exchange_ForTheAudienceOfTheToken_ActsForTheUser_NamesTheActor_AndEndsWithTheSession()
    {
        var email = await CreateUserAsync();
        var signIn = await PasswordGrantAsync(email, scope: $"{ServerFactory.DownstreamScope} offline_access");
        var userToken = await ValidateJwtAsync(signIn.AccessToken!, ServerFactory.DownstreamAudience);

        var exchanged = await ExchangeAsync(signIn.AccessToken!);
        Assert.False(exchanged.IsError, exchanged.Error + " " + exchanged.ErrorDescription);
        var jwt = await ValidateJwtAsync(exchanged.AccessToken!, "identity");
        var me = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", exchanged.AccessToken);
        await RevokeAsync(signIn.RefreshToken!);
        var afterSignOut = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", exchanged.AccessToken);

        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", exchanged.IssuedTokenType);
        Assert.Null(exchanged.RefreshToken);
        Assert.Equal(userToken.Subject, jwt.Subject);
        Assert.Equal(ServerFactory.DownstreamAudience, jwt.GetClaim("client_id").Value);
        Assert.Equal(ServerFactory.DownstreamAudience, JsonDocument.Parse(jwt.GetClaim("act").Value).RootElement.GetProperty("sub").GetString());
        Assert.True(jwt.ValidTo <= userToken.ValidTo, $"{jwt.ValidTo} > {userToken.ValidTo}");
        Assert.Equal(HttpStatusCode.OK, me.Status);
        Assert.Equal(email, me.Body.GetProperty("user").GetProperty("email").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, afterSignOut.Status);
        var admin = await LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);
        var audit = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?user_id={userToken.Subject}&action=token.exchanged", admin);
        Assert.Equal(1, audit.Body.GetProperty("total").GetInt32());
    }

    /// <summary>
    /// A caller with a lifetime of its own gets tokens of that lifetime from an exchange too, not the subject token's
    /// remaining hour: the cap only ever shortens.
    /// </summary>
    [Fact]
    public async Task Exchange_ByAClientWithItsOwnLifetime_IssuesTokensOfThatLifetime()
    {
        await using var server = new ServerFactory(DatabaseSettings.Sqlite(), overrides: [new("Identity:Clients:3:AccessTokenLifetime", "00:05:00")]);
        var http = server.CreateClient();
        var signIn = await http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Web, ClientSecret = ServerFactory.WebSecret,
            UserName = ServerFactory.AdminEmail, Password = ServerFactory.AdminPassword, Scope = ServerFactory.DownstreamScope,
        });

        var exchanged = await http.RequestTokenExchangeTokenAsync(new TokenExchangeTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.DownstreamAudience, ClientSecret = ServerFactory.DownstreamSecret, Scope = "identity",
            SubjectToken = signIn.AccessToken!, SubjectTokenType = "urn:ietf:params:oauth:token-type:access_token",
        });

        Assert.False(exchanged.IsError, exchanged.Error + " " + exchanged.ErrorDescription);
        var jwt = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(exchanged.AccessToken);
        Assert.Equal(TimeSpan.FromMinutes(5), jwt.ValidTo - jwt.IssuedAt);
    }

    [Fact]
    public async Task Exchange_OfATokenSentToSomeoneElse_OrOfAMachineToken_OrByAClientWithoutTheGrant_IsRefused()
    {
        var email = await CreateUserAsync();
        var forTheIdentityApi = (await PasswordGrantAsync(email, scope: "identity")).AccessToken!;
        var forOrders = (await PasswordGrantAsync(email, scope: ServerFactory.DownstreamScope)).AccessToken!;
        var machine = (await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = ServerFactory.DownstreamScope,
        })).AccessToken!;

        var notTheAudience = await ExchangeAsync(forTheIdentityApi);
        var machineSubject = await ExchangeAsync(machine);
        var withoutTheGrant = await ExchangeAsync(forOrders, clientId: ServerFactory.Service, secret: ServerFactory.ServiceSecret);
        var identityToken = await ExchangeAsync(forOrders, scope: "identity openid");
        var garbage = await ExchangeAsync("not-a-token");

        Assert.Equal("invalid_grant", notTheAudience.Error);
        Assert.Equal("invalid_grant", machineSubject.Error);
        Assert.Equal("unauthorized_client", withoutTheGrant.Error);
        Assert.Equal("invalid_scope", identityToken.Error);
        Assert.True(garbage.IsError);
        Assert.NotEqual(HttpStatusCode.InternalServerError, garbage.HttpStatusCode);
    }
}
