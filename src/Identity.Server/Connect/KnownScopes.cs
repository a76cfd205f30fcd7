using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Refuses a token request that names a scope this server does not know, in place of OpenIddict's check, with the same
/// answers. Every scope is registered with OpenIddict from configuration (ConnectSetup), so its check practically never
/// reads the database; but it built OpenIddict's scope manager and store for every token request to be ready to, a
/// sixtieth of a client_credentials request's CPU. Here they are built only for a scope the configuration does not name
/// (one left in the database by an earlier configuration), which is then looked up as before.
/// </summary>
public sealed class KnownScopes(IServiceProvider services) : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
        .AddFilter<OpenIddictServerHandlerFilters.RequireScopeValidationEnabled>()
        .UseScopedHandler<KnownScopes>()
        .SetOrder(OpenIddictServerHandlers.Exchange.ValidateScopes.Descriptor.Order)
        .SetType(OpenIddictServerHandlerType.BuiltIn)
        .Build();

    public async ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        var unknown = context.Request.GetScopes().Where(scope => !context.Options.Scopes.Contains(scope)).ToHashSet(StringComparer.Ordinal);
        if (unknown.Count > 0 && !context.Options.EnableDegradedMode)
        {
            var scopes = services.GetRequiredService<IOpenIddictScopeManager>();
            await foreach (var scope in scopes.FindByNamesAsync([.. unknown]))
                if (await scopes.GetNameAsync(scope) is { Length: > 0 } name)
                    unknown.Remove(name);
        }
        if (unknown.Count > 0)
        {
            context.Logger.LogInformation("The token request was rejected because invalid scopes were specified: {Scopes}.", unknown);
            context.Reject(Errors.InvalidScope, $"The specified '{Parameters.Scope}' parameter is not valid.");
        }
    }
}
