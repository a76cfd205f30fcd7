using Scalar.AspNetCore;

namespace Identity.Server.Hosting;

/// <summary>The OpenAPI document of the resource APIs (/openapi/v1.json) and a browsable reference (/scalar/v1).</summary>
public static class ApiDocs
{
    public static WebApplicationBuilder AddApiDocs(this WebApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(options => options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Identity API";
            document.Info.Description = "Resource APIs of the Identity server. Authenticate with a bearer access token for the " +
                "'identity' audience (scope identity), from /api/v1/auth/login or any OAuth flow at /connect/token. " +
                "Errors use {\"error\":{code,message,details,request_id}}.";
            return Task.CompletedTask;
        }));
        return builder;
    }

    public static IEndpointRouteBuilder MapApiDocs(this IEndpointRouteBuilder app)
    {
        app.MapOpenApi();
        app.MapScalarApiReference();
        return app;
    }
}
