using Identity.Server.Clients;
using Microsoft.Extensions.Options;
using OpenIddict.Server;

namespace Identity.Server.Connect;

/// <summary>
/// What discovery says beyond OpenIddict's own fields: back-channel and front-channel logout with sessions (Back-Channel
/// Logout 1.0 §2.1, Front-Channel Logout 1.0 §3; both carry the sid of the identity token), DPoP's proof algorithms
/// (RFC 9449 §5.1), request objects (RFC 9101 §10.1), acr values (OIDC Discovery §3), and the registration endpoint when self-registration is on (RFC 8414).
/// </summary>
public sealed class DiscoveryExtras(IOptions<DynamicRegistrationOptions> registration) : IOpenIddictServerHandler<OpenIddictServerEvents.HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.HandleConfigurationRequestContext>()
            .UseSingletonHandler<DiscoveryExtras>()
            // After OpenIddict's own, which says it takes no request objects.
            .SetOrder(OpenIddictServerHandlers.Discovery.AttachAdditionalMetadata.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(OpenIddictServerEvents.HandleConfigurationRequestContext context)
    {
        context.Metadata["backchannel_logout_supported"] = true;
        context.Metadata["backchannel_logout_session_supported"] = true;
        context.Metadata["frontchannel_logout_supported"] = true;
        context.Metadata["frontchannel_logout_session_supported"] = true;
        context.Metadata["dpop_signing_alg_values_supported"] = System.Text.Json.JsonSerializer.SerializeToElement(DPoP.Algorithms);
        context.Metadata["request_parameter_supported"] = true;
        context.Metadata["acr_values_supported"] = System.Text.Json.JsonSerializer.SerializeToElement(AuthenticationContext.Supported);
        context.Metadata["request_object_signing_alg_values_supported"] = System.Text.Json.JsonSerializer.SerializeToElement(RequestObjects.Algorithms);
        if (registration.Value.Enabled)
            context.Metadata["registration_endpoint"] = new Uri(context.BaseUri!, DynamicRegistration.Path.TrimStart('/')).AbsoluteUri;
        return ValueTask.CompletedTask;
    }
}
