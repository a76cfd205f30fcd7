using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.Identity;
using System.Security.Claims;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Auth;

public static class AuthApi
{
    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/auth").RequireAuthorization(ServerApi.Policy);
        group.MapGet("/me", Me);
        return app;
    }

    static async Task<IResult> Me(ClaimsPrincipal principal, UserManager<User> users, HttpContext http)
    {
        var user = await users.FindByIdAsync(principal.FindFirstValue(Claims.Subject) ?? "");
        if (user is null)
            return ApiErrors.Result(http, StatusCodes.Status404NotFound, "NOT_FOUND", "The token does not belong to a user.");

        return Results.Ok(new
        {
            user = new
            {
                id = user.Id,
                email = user.Email,
                name = user.Name,
                roles = (await users.GetRolesAsync(user)).Order(StringComparer.Ordinal),
                last_login = user.LastLoginAt,
                created_at = user.CreatedAt,
            },
        });
    }
}
