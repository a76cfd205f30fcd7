using System.Security.Claims;
using Identity.Server.Events;
using Identity.Server.Hosting;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// The apps a user allowed on the consent page, and taking that back, as Keycloak's account console and Google's
/// "third-party access" page offer: withdrawing an app's consent ends every session the user has with it (its refresh
/// tokens stop working, its back channel hears so), and the app must ask again next time.
/// </summary>
public static class ConsentsApi
{
    public sealed record ConsentView(string ClientId, string? ClientName, IReadOnlyList<string> Scopes, DateTimeOffset? GrantedAt);
    public sealed record ConsentList(IReadOnlyList<ConsentView> Consents);

    public static IEndpointRouteBuilder MapConsentsApi(this IEndpointRouteBuilder app)
    {
        var consents = app.MapGroup(Auth.AuthFacade.Prefix + "/me/consents").WithTags("Auth").RequireAuthorization(ServerApi.Policy);
        consents.MapGet("/", List).WithSummary("The apps the caller allowed, and what each may ask for");
        consents.MapDelete("/{clientId}", Withdraw).WithSummary("Withdraw an app's consent and end the caller's sessions with it");
        return app;
    }

    static async Task<IResult> List(ClaimsPrincipal principal, IOpenIddictAuthorizationManager authorizations, IOpenIddictApplicationManager applications) =>
        Results.Ok(new ConsentList(await ListAsync(principal.GetClaim(Claims.Subject)!, authorizations, applications)));

    static async Task<IResult> Withdraw(HttpContext http, string clientId, ClaimsPrincipal principal, IOpenIddictAuthorizationManager authorizations,
        IOpenIddictApplicationManager applications, Sessions.SessionStore sessions, SecurityEvents events) =>
        await WithdrawAsync(principal.GetClaim(Claims.Subject)!, clientId, authorizations, applications, sessions, events)
            ? Results.NoContent()
            : ApiErrors.NotFound(http);

    /// <summary>The apps <paramref name="userId"/> allowed, each once with every scope it was allowed, by client id.</summary>
    public static async Task<IReadOnlyList<ConsentView>> ListAsync(string userId, IOpenIddictAuthorizationManager authorizations,
        IOpenIddictApplicationManager applications)
    {
        var consents = new Dictionary<string, ConsentView>(StringComparer.Ordinal);
        await foreach (var authorization in authorizations.FindBySubjectAsync(userId))
        {
            if (!await authorizations.HasTypeAsync(authorization, AuthorizationTypes.Permanent) || !await authorizations.HasStatusAsync(authorization, Statuses.Valid) ||
                await authorizations.GetApplicationIdAsync(authorization) is not { } applicationId || await applications.FindByIdAsync(applicationId) is not { } application)
                continue;
            var clientId = (await applications.GetClientIdAsync(application))!;
            var scopes = await authorizations.GetScopesAsync(authorization);
            var granted = await authorizations.GetCreationDateAsync(authorization);
            // One app may hold several consents (it asked for more later): shown as one, with every scope.
            consents[clientId] = consents.TryGetValue(clientId, out var earlier)
                ? earlier with { Scopes = [.. earlier.Scopes.Union(scopes).Order(StringComparer.Ordinal)], GrantedAt = Min(earlier.GrantedAt, granted) }
                : new ConsentView(clientId, await applications.GetDisplayNameAsync(application), [.. scopes.Order(StringComparer.Ordinal)], granted);
        }
        return [.. consents.Values.OrderBy(c => c.ClientId, StringComparer.Ordinal)];
    }

    /// <summary>
    /// Withdraws every consent <paramref name="userId"/> gave the app and ends their sessions with it, audited; false
    /// when there was neither, and nothing was done.
    /// </summary>
    public static async Task<bool> WithdrawAsync(string userId, string clientId, IOpenIddictAuthorizationManager authorizations,
        IOpenIddictApplicationManager applications, Sessions.SessionStore sessions, SecurityEvents events)
    {
        if (await applications.FindByClientIdAsync(clientId) is not { } application)
            return false;
        var consents = new List<object>();
        await foreach (var authorization in authorizations.FindAsync(userId, await applications.GetIdAsync(application), Statuses.Valid, AuthorizationTypes.Permanent, []))
            consents.Add(authorization);
        foreach (var consent in consents)
            await authorizations.TryRevokeAsync(consent);
        var ended = await sessions.RevokeAllAsync(userId, except: null, clientId);
        if (consents.Count == 0 && ended == 0)
            return false;
        await events.RaiseNowAsync(EventTypes.ConsentRevoked, new SecurityEvents.Subject(userId), new { client = clientId, sessions_ended = ended });
        return true;
    }

    static DateTimeOffset? Min(DateTimeOffset? a, DateTimeOffset? b) => a is null ? b : b is null ? a : a < b ? a : b;
}
