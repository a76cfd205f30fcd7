using Duende.IdentityModel.Client;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>Base of a test class that shares one server: users, token requests and JWT checks done as a client would.</summary>
public abstract class ServerTests<TFactory>(TFactory factory) : IClassFixture<TFactory> where TFactory : ServerFactory
{
    public const string Password = "a long enough passphrase";

    protected TFactory Factory { get; } = factory;
    protected HttpClient Http { get; } = factory.CreateClient();
    protected string Issuer => Http.BaseAddress!.ToString();

    protected async Task<string> CreateUserAsync(params string[] roles)
    {
        var email = $"user-{Guid.NewGuid():N}@example.test";
        using var scope = Factory.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var user = new User { UserName = email, Email = email, Name = "Test User", EmailConfirmed = true };
        Assert.True((await users.CreateAsync(user, Password)).Succeeded);
        Assert.True((await users.AddToRolesAsync(user, ["user", .. roles])).Succeeded);
        return email;
    }

    protected Task<TokenResponse> PasswordGrantAsync(string email, string password = Password, string scope = "openid profile email roles offline_access identity") =>
        Http.RequestPasswordTokenAsync(new PasswordTokenRequest
        {
            Address = "/connect/token",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            UserName = email,
            Password = password,
            Scope = scope,
        });

    protected Task<TokenResponse> RefreshAsync(string refreshToken) =>
        Http.RequestRefreshTokenAsync(new RefreshTokenRequest
        {
            Address = "/connect/token",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            RefreshToken = refreshToken,
        });

    protected Task<TokenIntrospectionResponse> IntrospectAsync(string token) =>
        Http.IntrospectTokenAsync(new TokenIntrospectionRequest
        {
            Address = "/connect/introspect",
            ClientId = ServerFactory.Web,
            ClientSecret = ServerFactory.WebSecret,
            Token = token,
        });

    protected async Task<HttpResponseMessage> CallApiAsync(string accessToken, string path = "/api/v1/auth/me")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.SetBearerToken(accessToken);
        return await Http.SendAsync(request);
    }

    /// <summary>Validates a token as a third-party API would: signature against the published JWKS, issuer, audience, lifetime.</summary>
    protected async Task<JsonWebToken> ValidateJwtAsync(string token, string audience)
    {
        var jwks = new JsonWebKeySet(await Http.GetStringAsync("/.well-known/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }
}
