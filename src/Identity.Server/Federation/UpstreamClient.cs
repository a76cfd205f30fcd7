using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication.Google;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using OpenIddict.Client;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Federation;

/// <summary>
/// The provider side of the auth API's external sign-in (/api/v1/auth/oauth/*), where the first-party app, not this
/// server, receives the provider's redirect. The endpoints and credentials are those the browser sign-in uses, read
/// from the same library's options or discovery; the code is redeemed over the back channel with this server's
/// client secret and the app's PKCE verifier, and the user read from the provider's userinfo endpoint.
/// </summary>
public sealed class UpstreamClient(IHttpClientFactory httpClients, IServiceProvider services)
{
    public const string HttpClientName = "upstream";

    public sealed record Endpoints(string Authorization, string Token, string UserInfo, string ClientId, string ClientSecret, IEnumerable<string> Scopes);

    public async Task<Endpoints> EndpointsAsync(ExternalProvider provider, CancellationToken cancellationToken)
    {
        switch (provider.Kind)
        {
            case ProviderKind.Google:
                var google = services.GetRequiredService<IOptionsMonitor<GoogleOptions>>().Get(provider.Name);
                return new(google.AuthorizationEndpoint, google.TokenEndpoint, google.UserInformationEndpoint, google.ClientId, google.ClientSecret, google.Scope);

            case ProviderKind.Microsoft:
                var microsoft = services.GetRequiredService<IOptionsMonitor<OpenIdConnectOptions>>().Get(provider.Name);
                var metadata = await microsoft.ConfigurationManager!.GetConfigurationAsync(cancellationToken);
                return new(metadata.AuthorizationEndpoint, metadata.TokenEndpoint, metadata.UserInfoEndpoint,
                    microsoft.ClientId!, microsoft.ClientSecret!, microsoft.Scope);

            default:
                var client = services.GetRequiredService<OpenIddictClientService>();
                var registration = await client.GetClientRegistrationByProviderNameAsync(provider.Name, cancellationToken);
                var configuration = await client.GetServerConfigurationByProviderNameAsync(provider.Name, cancellationToken);
                return new(configuration.AuthorizationEndpoint!.AbsoluteUri, configuration.TokenEndpoint!.AbsoluteUri,
                    configuration.UserInfoEndpoint!.AbsoluteUri, registration.ClientId!, registration.ClientSecret!, registration.Scopes);
        }
    }

    /// <summary>The provider's authorization request for the app: its redirect URI and PKCE challenge, this server's state.</summary>
    public static string AuthorizationUrl(Endpoints endpoints, string redirectUri, string state, string codeChallenge) =>
        QueryHelpers.AddQueryString(endpoints.Authorization, new Dictionary<string, string?>
        {
            [Parameters.ResponseType] = ResponseTypes.Code,
            [Parameters.ClientId] = endpoints.ClientId,
            [Parameters.RedirectUri] = redirectUri,
            [Parameters.Scope] = string.Join(' ', endpoints.Scopes),
            [Parameters.State] = state,
            [Parameters.CodeChallenge] = codeChallenge,
            [Parameters.CodeChallengeMethod] = CodeChallengeMethods.Sha256,
        });

    /// <summary>
    /// Redeems the code and reads the user; null with the reason when the provider refuses either, or
    /// <see cref="Unavailable"/> when it fails (a 5xx answer): the provider's outage, not the user's mistake.
    /// </summary>
    public async Task<(ExternalIdentity? Identity, string? Error)> RedeemAsync(ExternalProvider provider, Endpoints endpoints, string code,
        string redirectUri, string codeVerifier, CancellationToken cancellationToken)
    {
        var http = httpClients.CreateClient(HttpClientName);
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, endpoints.Token)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                [Parameters.GrantType] = GrantTypes.AuthorizationCode,
                [Parameters.Code] = code,
                [Parameters.RedirectUri] = redirectUri,
                [Parameters.CodeVerifier] = codeVerifier,
                [Parameters.ClientId] = endpoints.ClientId,
                [Parameters.ClientSecret] = endpoints.ClientSecret,
            }),
        };
        // GitHub answers with a form unless asked for JSON.
        tokenRequest.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var tokenResponse = await http.SendAsync(tokenRequest, cancellationToken);
        if ((int)tokenResponse.StatusCode >= 500)
            return (null, Unavailable);
        var tokens = await ReadObjectAsync(tokenResponse, cancellationToken);
        if (!tokenResponse.IsSuccessStatusCode || tokens is null || !tokens.Value.TryGetProperty(Parameters.AccessToken, out var accessToken) ||
            accessToken.ValueKind != JsonValueKind.String)
            return (null, tokens?.TryGetProperty(Parameters.Error, out var error) == true ? error.ToString() : "token_request_failed");

        using var userRequest = new HttpRequestMessage(HttpMethod.Get, endpoints.UserInfo);
        userRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken.GetString());
        userRequest.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var userResponse = await http.SendAsync(userRequest, cancellationToken);
        if ((int)userResponse.StatusCode >= 500)
            return (null, Unavailable);
        var user = await ReadObjectAsync(userResponse, cancellationToken);
        if (!userResponse.IsSuccessStatusCode || user is null)
            return (null, "userinfo_request_failed");

        var claims = user.Value.EnumerateObject()
            .Where(p => p.Value.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
            .Select(p => new Claim(p.Name, p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText()));
        var identity = ExternalIdentity.From(provider.Name, new ClaimsPrincipal(new ClaimsIdentity(claims, provider.Name)));
        return identity is null
            ? (null, "no_subject")
            : (await GitHubEmails.CompleteAsync(identity, http, accessToken.GetString(), cancellationToken), null);
    }

    public const string Unavailable = "provider_unavailable";

    static async Task<JsonElement?> ReadObjectAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var root = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).RootElement;
            return root.ValueKind == JsonValueKind.Object ? root : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
