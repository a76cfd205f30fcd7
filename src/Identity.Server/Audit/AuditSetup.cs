namespace Identity.Server.Audit;

public static class AuditSetup
{
    public static WebApplicationBuilder AddAudit(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.Section)
            .Validate(o => o.RetentionDays >= 0, "Identity:Audit:RetentionDays cannot be negative.").ValidateOnStart();
        return builder;
    }
}
