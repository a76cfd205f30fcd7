using System.Security.Claims;
using System.Text.Json;
using Identity.Server.Data;
using Identity.Server.Events;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// OAuth 2.0 Token Exchange (RFC 8693), for delegation: an API that received a user's access token trades it for one
/// to call another API on that user's behalf. The rules, as Keycloak's internal exchange and Duende's delegation
/// samples have them: the caller is a confidential client allowed the grant, the subject token is a user's access
/// token from this server whose audience names the caller (it was sent to it), the new token carries only API
/// scopes the caller may ask for, names the caller in act (with any earlier actor nested), lives no longer than
/// the subject token, and dies with the subject's session. Every exchange is audited (token.exchanged).
/// </summary>
public static class TokenExchange
{
    public static async Task<IResult> ExchangeAsync(HttpContext http, OpenIddictRequest request, IServiceProvider services, PrincipalFactory factory,
        UserManager<User> users)
    {
        // OpenIddict has validated the subject token (signature, expiry, store entry) before this runs.
        var subject = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        if (request.SubjectTokenType != TokenTypeIdentifiers.AccessToken || subject?.GetTokenType() != TokenTypeIdentifiers.AccessToken)
            return ConnectEndpoints.Forbid(Errors.InvalidRequest, "subject_token must be an access token of this server.");
        if (!string.IsNullOrEmpty(request.ActorToken))
            return ConnectEndpoints.Forbid(Errors.InvalidRequest, "actor_token is not supported: the authenticated client is the actor.");
        // OpenIddict refuses a token neither sent to the caller nor issued to it; trading one's own tokens is no
        // delegation, so only a token sent to the caller (its audience) is taken.
        if (!subject.GetAudiences().Contains(request.ClientId!, StringComparer.Ordinal))
            return ConnectEndpoints.Forbid(Errors.InvalidGrant, "The subject token was not issued for this client: its audience must name it.");

        var scopes = request.GetScopes();
        if (scopes.IsEmpty)
            return ConnectEndpoints.Forbid(Errors.InvalidScope, "scope is required: name the API scopes the new token is for.");
        if (scopes.Contains(Scopes.OpenId) || scopes.Contains(Scopes.OfflineAccess))
            return ConnectEndpoints.Forbid(Errors.InvalidScope, "A token exchange issues an access token only: no openid, no offline_access.");

        // A user's token only (a machine token would let one client act as another), and the user still in good standing.
        var user = ServerApi.IsClient(subject) ? null : await users.FindByIdAsync(subject.GetClaim(Claims.Subject)!);
        if (!await Users.Accounts.MaySignInAsync(services.GetRequiredService<SignInManager<User>>(), user))
            return ConnectEndpoints.Forbid(Errors.InvalidGrant, "The subject token does not stand for a user who may sign in.");

        var principal = await factory.ForUserAsync(user!, scopes, subject.GetClaims(Claims.AuthenticationMethodReference),
            subject.GetClaim(ClaimDestinations.IdentityProvider));
        var actor = new Dictionary<string, object> { [Claims.Subject] = request.ClientId! };
        if (subject.GetClaim(ClaimDestinations.Actor) is { } earlier)
            actor[ClaimDestinations.Actor] = JsonSerializer.Deserialize<JsonElement>(earlier);
        principal.SetClaim(ClaimDestinations.Actor, JsonSerializer.SerializeToElement(actor));
        principal.SetDestinations(ClaimDestinations.For);
        // The session of the subject token: ending it (sign-out, revocation) ends this token too.
        if (subject.GetAuthorizationId() is { } session)
            principal.SetAuthorizationId(session);
        if (subject.GetExpirationDate() is { } expires)
        {
            var left = expires - services.GetRequiredService<TimeProvider>().GetUtcNow();
            var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
            var usual = (await applications.FindByClientIdAsync(request.ClientId!) is { } application
                ? Clients.ClientRegistration.LifetimesOf(await applications.GetSettingsAsync(application)).Access : null)
                ?? services.GetRequiredService<TokenOptions>().AccessTokenLifetime;
            if (left < usual)
                principal.SetAccessTokenLifetime(left);
        }

        await services.GetRequiredService<SecurityEvents>().RaiseNowAsync(EventTypes.TokenExchanged, SecurityEvents.Subject.Of(user!),
            new { client = request.ClientId, from_client = subject.GetClaim(Claims.ClientId), scopes = scopes.Order(StringComparer.Ordinal) });
        return ConnectEndpoints.SignIn(principal);
    }
}
