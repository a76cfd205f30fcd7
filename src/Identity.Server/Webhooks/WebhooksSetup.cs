using Microsoft.Extensions.Options;

namespace Identity.Server.Webhooks;

public static class WebhooksSetup
{
    public static WebApplicationBuilder AddWebhooks(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section)
            .Validate(o => o.Timeout > TimeSpan.Zero && o.PollInterval > TimeSpan.Zero, "Webhook timeout and poll interval must be positive.")
            .ValidateOnStart();
        builder.Services.AddHttpClient(DeliverWebhooks.ClientName)
            .ConfigurePrimaryHttpMessageHandler(services => Hosting.OutboundAddresses.Handler(WebhooksApi.AllowPrivate(
                services.GetRequiredService<IOptions<WebhookOptions>>(), services.GetRequiredService<IHostEnvironment>())));
        return builder;
    }
}
