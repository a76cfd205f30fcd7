using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;

namespace ProtectedApi;

/// <summary>
/// A downstream API that trusts Identity's access tokens: it checks the signature against Identity's JWKS (found
/// through discovery), the issuer, its own audience and the token type, and then the scope. It never calls Identity
/// per request. Run: dotnet run --project samples/ProtectedApi (listens on http://localhost:5080).
/// </summary>
public sealed class Program
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(jwt =>
        {
            jwt.Authority = builder.Configuration["Identity:Authority"] ?? "http://localhost:8080/";
            jwt.Audience = builder.Configuration["Identity:Audience"] ?? "orders-api";
            jwt.RequireHttpsMetadata = !builder.Environment.IsDevelopment();
            jwt.MapInboundClaims = false;
            jwt.TokenValidationParameters.ValidTypes = ["at+jwt"];
        });
        builder.Services.AddAuthorizationBuilder().AddPolicy("orders:read", policy => policy
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.FindFirstValue("scope")?.Split(' ').Contains("orders") == true));

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/orders", (ClaimsPrincipal caller) => new
        {
            caller = caller.FindFirstValue("sub"),
            client = caller.FindFirstValue("client_id"),
            orders = new[] { new { id = 1, item = "keyboard" }, new { id = 2, item = "monitor" } },
        }).RequireAuthorization("orders:read");
        app.Run();
    }
}
