using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// The acr claim and acr_values (OIDC Core §2 and §3.1.2.1): how strong a sign-in was, named by OpenID PAPE's policy
/// URIs as Auth0 names them, so an app can ask for a step up and an API can check what it got (RFC 9470).
/// <list type="bullet">
/// <item>phishing-resistant: a passkey (its signature is bound to this site's origin), which is multi-factor too;</item>
/// <item>multi-factor: a second factor (a one-time code after the password or provider, or a passkey);</item>
/// <item>none: one factor only.</item>
/// </list>
/// The level follows from the sign-in's amr, so it carries over through codes and refresh tokens as amr does. An
/// authorization request whose acr_values the browser session does not meet sends the user to log in again when their
/// account can meet it (a second factor or a passkey set up); otherwise the sign-in goes on, and acr says what it was
/// (acr_values are voluntary, §5.5.1.1: the app decides what to do with a weaker sign-in). A client's minimum_acr
/// (Keycloak's "minimum ACR value") is not voluntary: a sign-in into that client below it steps up the same way, a
/// multi-factor minimum sets up an authenticator app at the login when the account has no second factor, and a
/// sign-in is refused (unmet_authentication_requirements) when the account cannot give it (phishing resistance
/// without a passkey).
/// </summary>
public static class AuthenticationContext
{
    public const string None = "http://schemas.openid.net/pape/policies/2007/06/none";
    public const string MultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    public const string PhishingResistant = "http://schemas.openid.net/pape/policies/2007/06/phishing-resistant";

    public static readonly string[] Supported = [PhishingResistant, MultiFactor, None];

    /// <summary>The client's property that holds its minimum_acr.</summary>
    public const string Property = "minimum_acr";

    public static int LevelOf(string acr) => acr switch
    {
        PhishingResistant => 2,
        MultiFactor => 1,
        None => 0,
        _ => -1,
    };

    /// <summary>The acr of a sign-in with these authentication methods (RFC 8176).</summary>
    public static string Of(IEnumerable<string> amr)
    {
        var methods = amr as ICollection<string> ?? [.. amr];
        return methods.Contains("hwk") ? PhishingResistant : methods.Contains(AuthenticationMethods.MultiFactor) ? MultiFactor : None;
    }

    /// <summary>Whether a sign-in with <paramref name="amr"/> is at <paramref name="level"/> or above.</summary>
    public static bool Meets(IEnumerable<string> amr, int level) => LevelOf(Of(amr)) >= level;

    /// <summary>The level of the client's minimum_acr; null without one.</summary>
    public static async ValueTask<int?> MinimumOfAsync(IOpenIddictApplicationManager applications, object application, CancellationToken cancellationToken = default) =>
        await MinimumAcrOfAsync(applications, application, cancellationToken) is { } acr && LevelOf(acr) is var level and > 0 ? level : null;

    /// <summary>The client's minimum_acr as stored; null without one.</summary>
    public static async ValueTask<string?> MinimumAcrOfAsync(IOpenIddictApplicationManager applications, object application, CancellationToken cancellationToken = default) =>
        (await applications.GetPropertiesAsync(application, cancellationToken)).TryGetValue(Property, out var value) &&
        value.ValueKind == System.Text.Json.JsonValueKind.String
            ? value.GetString()
            : null;

    /// <summary>
    /// The client's minimum_acr is multi-factor: a login into it without a second factor sets one up (an authenticator
    /// app) rather than fail. Phishing resistance takes a passkey, which is not set up in a login.
    /// </summary>
    public static async Task<bool> RequiresSecondFactorAsync(IOpenIddictApplicationManager applications, string? clientId) =>
        !string.IsNullOrEmpty(clientId) && await applications.FindByClientIdAsync(clientId) is { } application &&
        await MinimumOfAsync(applications, application) == LevelOf(MultiFactor);

    /// <summary>What a user is told to set up for a sign-in at <paramref name="level"/>.</summary>
    public static string WhatItTakes(int level) => level >= 2 ? "a passkey" : "a second factor (an authenticator app or a passkey)";

    /// <summary>The weakest level among the request's acr_values this server knows (any of them will do); null if none.</summary>
    public static int? RequestedLevel(OpenIddictRequest request)
    {
        var levels = (request.AcrValues ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(LevelOf).Where(l => l >= 0).ToList();
        return levels.Count == 0 ? null : levels.Min();
    }

    /// <summary>
    /// Whether a sign-in with <paramref name="amr"/> falls short of the request's acr_values or the client's
    /// <paramref name="minimum"/> though the user could meet them by logging in again: a passkey meets any level; a
    /// second factor meets multi-factor, and where the client's minimum is multi-factor the login sets one up when the
    /// account has none (<see cref="RequiresSecondFactorAsync"/>).
    /// </summary>
    public static async Task<bool> StepUpNeededAsync(OpenIddictRequest request, int? minimum, IEnumerable<string> amr, User user, UserManager<User> users,
        Mfa.MultiFactor factors)
    {
        var floor = minimum ?? 0;
        var wanted = Math.Max(RequestedLevel(request) ?? 0, floor);
        if (wanted == 0 || Meets(amr, wanted))
            return false;
        if ((await users.GetPasskeysAsync(user)).Count > 0)
            return true;
        // Without a passkey, multi-factor is as far as a login can go.
        var multiFactorHelps = !Meets(amr, 1) && (wanted == 1 || floor == 1);
        return multiFactorHelps && (floor == 1 || await factors.IsEnabledAsync(user.Id));
    }

    /// <summary>
    /// The client's minimum at the token endpoint, for sign-ins made there (password, device code, token exchange, a
    /// provider's or a second factor's grant): one that falls short is refused. A code or refresh token carries the
    /// sign-in the authorization endpoint already held to it, and is not asked again (refresh tokens from before a
    /// minimum was set keep working until they end).
    /// </summary>
    public sealed class TokenRequests(IOpenIddictApplicationManager applications) : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .AddFilter<OpenIddictServerHandlerFilters.RequireTokenRequest>()
            .UseScopedHandler<TokenRequests>()
            .SetOrder(OpenIddictServerHandlers.ValidateSignInDemand.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public async ValueTask HandleAsync(ProcessSignInContext context)
        {
            var request = context.Request;
            if (request is null || request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType() || request.IsClientCredentialsGrantType() ||
                context.Principal is not { } principal || ServerApi.IsClient(principal) || string.IsNullOrEmpty(request.ClientId) ||
                await applications.FindByClientIdAsync(request.ClientId, context.CancellationToken) is not { } application ||
                await MinimumOfAsync(applications, application, context.CancellationToken) is not { } floor ||
                Meets(principal.GetClaims(Claims.AuthenticationMethodReference), floor))
                return;
            context.Reject(Errors.InvalidGrant, $"This client asks for a sign-in with {WhatItTakes(floor)}: set it up in your account, then sign in again.");
        }
    }
}
