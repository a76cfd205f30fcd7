namespace Identity.Server.Events;

public static class EventsSetup
{
    public static WebApplicationBuilder AddSecurityEvents(this WebApplicationBuilder builder)
    {
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddScoped<SecurityEvents>();
        return builder;
    }
}
