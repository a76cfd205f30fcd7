// A service calling the protected API with its own identity (client credentials).
// IDENTITY_CLIENT_ID=orders-worker IDENTITY_CLIENT_SECRET=... dotnet run --project samples/ConsoleClient
using Duende.IdentityModel.Client;

var authority = Environment.GetEnvironmentVariable("IDENTITY_AUTHORITY") ?? "http://localhost:8080";
var api = Environment.GetEnvironmentVariable("ORDERS_API") ?? "http://localhost:5080/orders";
var clientId = Environment.GetEnvironmentVariable("IDENTITY_CLIENT_ID") ?? "orders-worker";
var secret = Environment.GetEnvironmentVariable("IDENTITY_CLIENT_SECRET")
    ?? throw new InvalidOperationException("Set IDENTITY_CLIENT_SECRET to the client's secret.");

using var http = new HttpClient();
var discovery = await http.GetDiscoveryDocumentAsync(authority);
if (discovery.IsError)
    throw new InvalidOperationException($"Discovery failed: {discovery.Error}");

var token = await http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
{
    Address = discovery.TokenEndpoint,
    ClientId = clientId,
    ClientSecret = secret,
    Scope = "orders",
});
if (token.IsError)
    throw new InvalidOperationException($"Token request failed: {token.Error} {token.ErrorDescription}");
Console.WriteLine($"Got an access token for {token.ExpiresIn} s.");

http.SetBearerToken(token.AccessToken!);
Console.WriteLine(await http.GetStringAsync(api));
