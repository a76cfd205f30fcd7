using System.Net.Http.Headers;
using System.Text.Json;

namespace Identity.Server.Federation;

/// <summary>
/// GitHub's user API shows only the public email, which most accounts leave unset. The emails API (scope user:email)
/// gives the primary address and whether GitHub verified it, which decides account creation and linking.
/// </summary>
public static class GitHubEmails
{
    public const string Endpoint = "https://api.github.com/user/emails";

    /// <summary>The account's primary address and whether it is verified; null when GitHub does not say.</summary>
    public static async Task<(string Email, bool Verified)?> PrimaryAsync(HttpClient http, string? accessToken, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(accessToken))
            return null;
        using var request = new HttpRequestMessage(HttpMethod.Get, Endpoint);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.github+json"));
        using var response = await http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
            return null;
        try
        {
            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            if (document.RootElement.ValueKind != JsonValueKind.Array)
                return null;
            foreach (var entry in document.RootElement.EnumerateArray())
                if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("primary", out var primary) && primary.ValueKind == JsonValueKind.True &&
                    entry.TryGetProperty("email", out var email) && email.ValueKind == JsonValueKind.String)
                    return (email.GetString()!, entry.TryGetProperty("verified", out var verified) && verified.ValueKind == JsonValueKind.True);
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary><paramref name="identity"/> with GitHub's primary address in place of the public one.</summary>
    public static async Task<ExternalIdentity> CompleteAsync(ExternalIdentity identity, HttpClient http, string? accessToken, CancellationToken cancellationToken) =>
        identity.Provider == ExternalProvider.GitHub && await PrimaryAsync(http, accessToken, cancellationToken) is { } primary
            ? identity with { Email = primary.Email, EmailVerified = primary.Verified }
            : identity;
}
