namespace Identity.Server.Policies;

public static class PolicySetup
{
    public static WebApplicationBuilder AddPolicies(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ActivePolicies>();
        builder.Services.AddSingleton<DirectoryFacts>();
        return builder;
    }
}
