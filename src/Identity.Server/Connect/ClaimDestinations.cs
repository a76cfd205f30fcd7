using System.Security.Claims;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// The one switch that decides which claim goes into which token. Access tokens carry the user's identity for APIs;
/// the identity token (and so userinfo) carries only what the granted scopes allow. Anything not listed goes nowhere,
/// so an internal claim (security stamp, ...) can never leak into a token.
/// </summary>
public static class ClaimDestinations
{
    public const string Roles = "roles";
    public const string Groups = "groups";

    /// <summary>The browser session a sign-in belongs to (OIDC Back-Channel Logout 1.0 §2.1), named in its logout tokens.</summary>
    public const string SessionId = "sid";
    public const string IdentityProvider = "idp";
    public const string OrganizationId = "org_id";
    public const string OrganizationDomain = "org_domain";

    /// <summary>RFC 8693 §4.1: the party acting for the subject of an exchanged token (and, nested, whoever acted before).</summary>
    public const string Actor = "act";

    public static IEnumerable<string> For(Claim claim) => claim.Type switch
    {
        Claims.Subject or Claims.AuthenticationMethodReference or Claims.AuthenticationContextReference or IdentityProvider or OrganizationId or OrganizationDomain
            => [Destinations.AccessToken, Destinations.IdentityToken],
        // OIDC Core 2: when the user authenticated, in the identity token (required there when max_age was asked);
        // in the access token too (RFC 9068 2.2.1), where this server's APIs ask for a recent sign-in.
        Claims.AuthenticationTime => [Destinations.AccessToken, Destinations.IdentityToken],
        SessionId => [Destinations.IdentityToken],
        Actor => [Destinations.AccessToken],
        Claims.Name when Has(claim, Scopes.Profile) => [Destinations.AccessToken, Destinations.IdentityToken],
        Claims.Email or Claims.EmailVerified when Has(claim, Scopes.Email) => [Destinations.AccessToken, Destinations.IdentityToken],
        Roles or Groups when Has(claim, Scopes.Roles) => [Destinations.AccessToken, Destinations.IdentityToken],
        Claims.Name or Claims.Email or Claims.EmailVerified or Roles or Groups => [Destinations.AccessToken],
        // A declared user attribute (Users/UserAttributes), marked with its scope when PrincipalFactory set it.
        _ when claim.Properties.TryGetValue(Users.UserAttributes.ScopeProperty, out var scope) =>
            scope.Length > 0 && Has(claim, scope) ? [Destinations.AccessToken, Destinations.IdentityToken] : [Destinations.AccessToken],
        _ => [],
    };

    static bool Has(Claim claim, string scope) => claim.Subject?.HasScope(scope) == true;
}

/// <summary>Authentication method references (RFC 8176) the server puts in the amr claim.</summary>
public static class AuthenticationMethods
{
    public const string Password = "pwd";
    public const string OneTimePassword = "otp";
    public const string MultiFactor = "mfa";
    public const string Federated = "fed";

    /// <summary>The first factor: a password, or the sign-in of an external provider.</summary>
    public static string First(string? identityProvider) => identityProvider is null ? Password : Federated;

    /// <summary>
    /// A passkey with user verification (RFC 8176): proof of possession of a key the device guards (hwk), unlocked by
    /// the user's PIN or biometrics, so two factors in one step.
    /// </summary>
    public static readonly string[] Passkey = ["hwk", "user", MultiFactor];

    /// <summary>A first factor followed by a one-time code.</summary>
    public static string[] WithSecondFactor(string? identityProvider) => [First(identityProvider), OneTimePassword, MultiFactor];
}
