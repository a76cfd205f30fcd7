using System.Security.Claims;
using Identity.Server.Account;
using Identity.Server.Auth;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Mfa;

/// <summary>
/// /api/v1/auth/mfa: set up, confirm and turn off TOTP with backup codes. Finishing a login held for its second
/// factor (POST /api/v1/auth/mfa/verify with an mfa_token) is a token request that OpenIddict handles (AuthFacade);
/// the same address with a bearer token and no mfa_token confirms a setup and lands here.
/// </summary>
public static class MfaApi
{
    public sealed record SetupRequest(string? Method, string? Phone);
    public sealed record SetupResponse(string Secret, string SetupUri, string QrCode, IReadOnlyList<string> BackupCodes);
    public sealed record PhoneSetupResponse(string Method, string Phone, IReadOnlyList<string> BackupCodes, long ExpiresIn);
    public sealed record VerifyRequest(string? Token, string? Method, string? MfaToken);
    public sealed record VerifyResponse(bool Verified, int RemainingBackupCodes);
    public sealed record DisableRequest(string? Token);

    public static WebApplicationBuilder AddMfa(this WebApplicationBuilder builder)
    {
        builder.Services.AddScoped<MultiFactor>();
        builder.Services.AddSingleton(builder.Configuration.GetSection(MfaPolicy.Section).Get<MfaPolicy>() ?? new MfaPolicy());
        if (builder.Configuration.GetSection(SmsOptions.Section).Get<SmsOptions>()?.DevelopmentFolder is { Length: > 0 } folder)
            builder.Services.AddSingleton<ISmsSender>(new FolderSmsSender(Path.GetFullPath(folder, builder.Environment.ContentRootPath)));
        return builder;
    }

    public static IEndpointRouteBuilder MapMfaApi(this IEndpointRouteBuilder app)
    {
        var mfa = app.MapGroup(AuthFacade.Prefix + "/mfa").WithTags("MFA");
        mfa.MapPost("/setup", Setup).RequireAuthorization(ServerApi.Policy)
            .WithSummary("Start TOTP setup: secret, otpauth URI, QR code and backup codes (not active until verified)");
        // Two requests share this address (the seed's): it authenticates by itself rather than by policy.
        mfa.MapPost("/verify", Verify).Accepts<VerifyRequest>("application/json").Produces<VerifyResponse>().Produces<FacadeTokenResponse>()
            .WithSummary("With a bearer token: confirm the setup with a current code. With an mfa_token (no bearer token): finish a login.");
        mfa.MapDelete("/", Disable).RequireAuthorization(ServerApi.Policy).WithSummary("Turn MFA off; needs a current code or a backup code");
        return app;
    }


    static async Task<IResult> Setup(HttpContext http, SetupRequest? body, ClaimsPrincipal principal, UserManager<User> users, MultiFactor mfa,
        TimeProvider time)
    {
        // Enrolling a factor needs a recent sign-in, not just a token.
        if (!RecentSignIn.Holds(principal, time))
            return ApiErrors.Result(http, 403, "FORBIDDEN", $"Sign in again to set up MFA: it needs a sign-in of the last {RecentSignIn.Window.TotalMinutes:0} minutes.",
                new { reason = "reauthentication_required", max_age = (long)RecentSignIn.Window.TotalSeconds });
        var method = body?.Method ?? MultiFactor.Totp;
        if (method == MultiFactor.Phone && !mfa.SmsAvailable)
            // Not faked: without an SMS sender configured, no code could ever reach the phone.
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "SMS is not configured on this server; use method \"totp\".", new { field = "method" });
        if (method is not (MultiFactor.Totp or MultiFactor.Phone))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "method must be \"totp\" or \"phone\".", new { field = "method" });

        var user = await users.GetUserAsync(principal);
        if (user is null)
            return ApiErrors.Result(http, 401, "UNAUTHORIZED", "The token's account no longer exists.");
        if (method == MultiFactor.Phone)
        {
            if (body?.Phone is not { } number || !PhoneNumbers.E164().IsMatch(number))
                return ApiErrors.Result(http, 400, "INVALID_REQUEST", "phone must be an E.164 number, such as +15555550100.", new { field = "phone" });
            return await mfa.BeginPhoneAsync(user, number) is { } phone
                ? Results.Ok(new PhoneSetupResponse(MultiFactor.Phone, phone.Phone, phone.BackupCodes, phone.ExpiresIn))
                : ApiErrors.Result(http, 409, "CONFLICT", "MFA is already on; turn it off first to set up another factor.");
        }
        var setup = await mfa.BeginAsync(user);
        if (setup is null)
            return ApiErrors.Result(http, 409, "CONFLICT", "MFA is already on; turn it off first to set up a new authenticator.");
        return Results.Ok(new SetupResponse(setup.Secret, setup.SetupUri, setup.QrCode, setup.BackupCodes));
    }

    static async Task<IResult> Verify(HttpContext http, UserManager<User> users, MultiFactor mfa)
    {
        // Finishing a login: OpenIddict has read and validated it as a token request (the MFA grant).
        if (http.GetOpenIddictServerRequest() is not null)
            return await ConnectEndpoints.Exchange(http, http.RequestServices);

        var principal = (await http.AuthenticateAsync(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)).Principal;
        if (principal is null)
            return ApiErrors.Result(http, 401, "UNAUTHORIZED", "Missing or invalid authentication.");
        VerifyRequest? body;
        try
        {
            body = await http.Request.ReadFromJsonAsync<VerifyRequest>();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
        {
            body = null;
        }
        if (body is null)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "The body must be a JSON object {token, method}.");
        if ((body.Method ?? MultiFactor.Totp) is not (MultiFactor.Totp or MultiFactor.Phone or MultiFactor.Sms))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "A setup is confirmed with method \"totp\" or \"phone\".", new { field = "method" });
        var user = await users.GetUserAsync(principal);
        if (user is null)
            return ApiErrors.Result(http, 401, "UNAUTHORIZED", "The token's account no longer exists.");

        var (outcome, remaining) = await mfa.ConfirmAsync(user, body.Token);
        return Answer(http, outcome) ?? Results.Ok(new VerifyResponse(true, remaining));
    }

    static async Task<IResult> Disable(HttpContext http, [Microsoft.AspNetCore.Mvc.FromBody] DisableRequest? body, ClaimsPrincipal principal, UserManager<User> users, MultiFactor mfa)
    {
        var user = await users.GetUserAsync(principal);
        if (user is null)
            return ApiErrors.Result(http, 401, "UNAUTHORIZED", "The token's account no longer exists.");
        return Answer(http, await mfa.DisableAsync(user, body?.Token)) ?? Results.NoContent();
    }

    /// <summary>The error for an outcome that is not Accepted, else null.</summary>
    internal static IResult? Answer(HttpContext http, MultiFactor.Outcome outcome) => outcome switch
    {
        MultiFactor.Outcome.Accepted => null,
        MultiFactor.Outcome.NotSetUp => ApiErrors.Result(http, 400, "INVALID_REQUEST", "MFA is not set up for this account.", new { reason = "mfa_not_set_up" }),
        MultiFactor.Outcome.Locked => ApiErrors.Result(http, 403, "FORBIDDEN", "Too many wrong codes: MFA is locked for a while.", new { reason = "mfa_locked" }),
        MultiFactor.Outcome.RequiredByPolicy => ApiErrors.Result(http, 403, "FORBIDDEN",
            "This server requires a second factor of this account: it cannot be turned off (an administrator can reset it).", new { reason = "mfa_required_by_policy" }),
        _ => ApiErrors.Result(http, 400, "INVALID_REQUEST", "The code is not valid.", new { field = "token", reason = "invalid_code" }),
    };
}
