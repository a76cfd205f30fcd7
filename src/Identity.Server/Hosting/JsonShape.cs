using System.Text.Json;

namespace Identity.Server.Hosting;

public static class JsonShape
{
    /// <summary>The seed's JSON is snake_case (last_login, role_id, request_id): bodies in and out use it.</summary>
    public static WebApplicationBuilder AddSnakeCaseJson(this WebApplicationBuilder builder)
    {
        builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower);
        return builder;
    }
}
