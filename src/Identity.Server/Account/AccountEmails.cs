using Identity.Server.Auth;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Hosting;
using Identity.Server.Roles;
using Identity.Server.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// Self-service by email: a forgotten password is reset through a link sent to the account's address, and an
/// address is verified through a link sent to it (registration sends one). Links carry ASP.NET Core Identity's
/// data-protected tokens, bound to the account's security stamp (so a reset link dies with the password it replaces)
/// and, for verification, to the address itself (so a link for an old address cannot verify a new one); they live
/// an hour (reset) or two days (verification), as set in <see cref="EmailOptions"/>. Answers never tell whether an address has an account. Mapped only when an email sender is configured.
/// </summary>
public static class AccountEmails
{
    public sealed record ForgotPasswordRequest(string? Email);
    public sealed record ResetPasswordRequest(string? UserId, string? Token, string? NewPassword);
    public sealed record VerifyEmailRequest(string? UserId, string? Token);
    public sealed record Sent(string Message);

    /// <summary>A few emails per account per quarter hour: enough for a lost one, too few to flood someone's inbox.</summary>
    static readonly RateLimitOptions.Limit PerAccount = new() { PermitLimit = 5, Window = TimeSpan.FromMinutes(15) };

    public const string CheckYourEmail = "If an account exists for this address, an email with a link is on its way.";

    public static WebApplicationBuilder AddAccountEmails(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(EmailOptions.Section).Get<EmailOptions>() ?? new EmailOptions();
        builder.Services.AddSingleton(Options.Create(options));
        if (!string.IsNullOrEmpty(options.Smtp.Host))
            builder.Services.AddSingleton<IEmailSender>(new SmtpEmailSender(options));
        else if (!string.IsNullOrEmpty(options.DevelopmentFolder))
            builder.Services.AddSingleton<IEmailSender>(new FolderEmailSender(options.DevelopmentFolder));
        else if (builder.Configuration.GetValue(Accounts.RequireVerifiedEmailSetting, false))
            throw new InvalidOperationException($"{Accounts.RequireVerifiedEmailSetting} needs an email sender ({EmailOptions.Section}:Smtp:Host, or " +
                $"{EmailOptions.Section}:DevelopmentFolder): without one, new accounts could never verify their address and sign in.");
        builder.Services.Configure<DataProtectionTokenProviderOptions>(tokens => tokens.TokenLifespan = options.ResetLinkLifetime);
        builder.Services.Configure<VerificationTokens.Lifetime>(tokens => tokens.TokenLifespan = options.VerificationLinkLifetime);
        builder.Services.AddTransient<VerificationTokens>();
        builder.Services.Configure<IdentityOptions>(identity =>
            identity.Tokens.ProviderMap[VerificationTokens.ProviderName] = new TokenProviderDescriptor(typeof(VerificationTokens)));
        return builder;
    }

    public static IEndpointRouteBuilder MapAccountEmails(this IEndpointRouteBuilder app)
    {
        if (app.ServiceProvider.GetService<IEmailSender>() is null)
            return app;
        var auth = app.MapGroup(AuthFacade.Prefix).WithTags("Auth");
        auth.MapPost("/password/forgot", Forgot).Produces<Sent>(StatusCodes.Status202Accepted)
            .WithSummary("Email a password reset link; the answer is the same whether the address has an account or not");
        auth.MapPost("/password/reset", Reset).Produces(StatusCodes.Status204NoContent)
            .WithSummary("Set a new password with the emailed token; every session of the account ends");
        auth.MapPost("/verify-email", Verify).Produces(StatusCodes.Status204NoContent).WithSummary("Verify the address with the emailed token");
        app.MapGroup(AuthFacade.Prefix).WithTags("Auth").RequireAuthorization(ServerApi.Policy)
            .MapPost("/verify-email/send", SendVerification).Produces<Sent>(StatusCodes.Status202Accepted)
            .WithSummary("Email the caller a link that verifies their address");
        return app;
    }

    static async Task<IResult> Forgot(HttpContext http, ForgotPasswordRequest body, UserManager<User> users, IEmailSender sender,
        RateLimitCounters counters, ILogger<IEmailSender> logger)
    {
        if (string.IsNullOrWhiteSpace(body.Email))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "An email address is required.", new { field = "email" });
        await RequestResetAsync(http, users, sender, counters, logger, body.Email);
        return Results.Json(new Sent(CheckYourEmail), statusCode: StatusCodes.Status202Accepted);
    }

    static async Task<IResult> Reset(HttpContext http, ResetPasswordRequest body, UserManager<User> users, SecurityEvents events,
        Sessions.SessionStore sessions)
    {
        if (string.IsNullOrEmpty(body.NewPassword))
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "A new password is required.", new { field = "new_password" });
        var (result, _) = await ResetPasswordAsync(users, events, sessions, body.UserId, body.Token, body.NewPassword);
        return result switch
        {
            null => ApiErrors.Result(http, 400, "INVALID_REQUEST", "The link is not valid or has expired: ask for a new one.",
                new { field = "token", reason = "invalid_token" }),
            { Succeeded: false } => Accounts.Problem(http, result, passwordField: "new_password"),
            _ => Results.NoContent(),
        };
    }

    static async Task<IResult> Verify(HttpContext http, VerifyEmailRequest body, UserManager<User> users, IdentityDbContext db, SecurityEvents events) =>
        await VerifyEmailAsync(users, db, events, body.UserId, body.Token)
            ? Results.NoContent()
            : ApiErrors.Result(http, 400, "INVALID_REQUEST", "The link is not valid or has expired: ask for a new one.",
                new { field = "token", reason = "invalid_token" });

    static async Task<IResult> SendVerification(HttpContext http, System.Security.Claims.ClaimsPrincipal principal, UserManager<User> users,
        IEmailSender sender, RateLimitCounters counters, ILogger<IEmailSender> logger)
    {
        var user = await users.GetUserAsync(principal);
        if (user is null)
            return ApiErrors.Result(http, StatusCodes.Status404NotFound, "NOT_FOUND", "The token does not belong to a user.");
        if (user.EmailConfirmed)
            return ApiErrors.Result(http, 400, "INVALID_REQUEST", "The address is verified already.", new { reason = "already_verified" });
        await SendVerificationAsync(http, users, sender, counters, logger, user);
        return Results.Json(new Sent("An email with a link is on its way."), statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>Emails a reset link to the active account of <paramref name="email"/>, if there is one; callers answer the same either way.</summary>
    public static async Task RequestResetAsync(HttpContext http, UserManager<User> users, IEmailSender sender, RateLimitCounters counters,
        ILogger logger, string email)
    {
        var user = await users.FindByEmailAsync(email.Trim());
        if (user is not null && Accounts.IsActive(user))
            await SendResetAsync(http, users, sender, counters, logger, user);
    }

    static async Task SendResetAsync(HttpContext http, UserManager<User> users, IEmailSender sender, RateLimitCounters counters,
        ILogger logger, User user)
    {
        var token = await users.GeneratePasswordResetTokenAsync(user);
        var link = Link(http, "/Account/ResetPassword", user.Id, token);
        await SendAsync(http, sender, counters, logger, user, "Reset your password",
            $"Someone asked to reset the password of your account. If it was you, open this link within an hour:\n\n{link}\n\n" +
            "If it was not you, ignore this email: your password stays as it is.");
    }

    /// <summary>A new account's verification link, by the server's email sender; nothing when none is configured.</summary>
    public static async Task SendVerificationIfConfiguredAsync(HttpContext http, UserManager<User> users, User user)
    {
        if (http.RequestServices.GetService<IEmailSender>() is { } sender)
            await SendVerificationAsync(http, users, sender, http.RequestServices.GetRequiredService<RateLimitCounters>(),
                http.RequestServices.GetRequiredService<ILogger<IEmailSender>>(), user);
    }

    /// <summary>
    /// Someone tried to register the address of an existing account: its owner hears so, with the ways back in, in place
    /// of a "taken" answer that would tell the caller the address has an account (when addresses must be verified).
    /// </summary>
    public static async Task SendRegistrationAttemptAsync(HttpContext http, UserManager<User> users, string email)
    {
        if (await users.FindByEmailAsync(email) is not { } owner || http.RequestServices.GetService<IEmailSender>() is not { } sender)
            return;
        await SendAsync(http, sender, http.RequestServices.GetRequiredService<RateLimitCounters>(), http.RequestServices.GetRequiredService<ILogger<IEmailSender>>(),
            owner, "Someone tried to create an account with your address",
            $"Someone tried to create an account with this email address, which already has one. If it was you, sign in:\n\n{PageAddress(http, "/Account/Login")}\n\n" +
            $"or, if you forgot your password, reset it:\n\n{PageAddress(http, "/Account/ForgotPassword")}\n\nIf it was not you, ignore this email: nothing changed.");
    }

    public static async Task SendVerificationAsync(HttpContext http, UserManager<User> users, IEmailSender sender, RateLimitCounters counters,
        ILogger logger, User user)
    {
        var token = await users.GenerateUserTokenAsync(user, VerificationTokens.ProviderName, VerificationPurpose(user));
        var link = Link(http, "/Account/VerifyEmail", user.Id, token);
        await SendAsync(http, sender, counters, logger, user, "Verify your email address",
            $"Open this link within two days to confirm that this address is yours:\n\n{link}\n");
    }

    /// <summary>
    /// The new password, if the token is right for the account (null if not): checked by the registration rules,
    /// with a new security stamp, a lifted lockout, and every session of the account ended.
    /// </summary>
    public static async Task<(IdentityResult? Result, User? User)> ResetPasswordAsync(UserManager<User> users, SecurityEvents events,
        Sessions.SessionStore sessions, string? userId, string? token, string newPassword)
    {
        var user = string.IsNullOrEmpty(userId) ? null : await users.FindByIdAsync(userId);
        if (user is null || !Accounts.IsActive(user) || string.IsNullOrEmpty(token) ||
            !await users.VerifyUserTokenAsync(user, users.Options.Tokens.PasswordResetTokenProvider, UserManager<User>.ResetPasswordTokenPurpose, token))
            return (null, null);
        if (await Accounts.ReplacePasswordAsync(users, user, newPassword) is { Succeeded: false } refused)
            return (refused, user);
        // Proof of the mailbox ends a lockout for failed sign-ins (not a deactivation: the account is active).
        user.AccessFailedCount = 0;
        user.LockoutEnd = null;
        await events.RaiseAsync(EventTypes.UserUpdated, SecurityEvents.Subject.Of(user), new { changed = new[] { "password" }, source = "reset_by_email" });
        var updated = await users.UpdateAsync(user);
        if (updated.Succeeded)
            await sessions.RevokeAllAsync(user.Id, except: null);
        return (updated, user);
    }

    /// <summary>
    /// Marks the address verified if the token was made for this account and this address. A verified address makes
    /// the account a member of its domain's organization, and the first verified member its org_admin.
    /// </summary>
    public static async Task<bool> VerifyEmailAsync(UserManager<User> users, IdentityDbContext db, SecurityEvents events, string? userId, string? token)
    {
        var user = string.IsNullOrEmpty(userId) ? null : await users.FindByIdAsync(userId);
        if (user is null || string.IsNullOrEmpty(token) ||
            !await users.VerifyUserTokenAsync(user, VerificationTokens.ProviderName, VerificationPurpose(user), token))
            return false;
        if (user.EmailConfirmed)
            return true;
        var firstMember = user.OrganizationId is { } organization &&
            !await db.Users.AnyAsync(u => u.OrganizationId == organization && u.EmailConfirmed && u.Id != user.Id);
        user.EmailConfirmed = true;
        await events.RaiseAsync(EventTypes.UserUpdated, SecurityEvents.Subject.Of(user), new { changed = new[] { "email_verified" }, source = "email_link" });
        if (!(await users.UpdateAsync(user)).Succeeded)
            return false;
        if (firstMember && !await users.IsInRoleAsync(user, BuiltInRoles.OrgAdmin))
        {
            await events.RaiseAsync(EventTypes.RoleAssigned, SecurityEvents.Subject.Of(user) with { Roles = [.. await users.GetRolesAsync(user), BuiltInRoles.OrgAdmin] },
                new { role = BuiltInRoles.OrgAdmin, reason = "first_verified_member" });
            await users.AddToRoleAsync(user, BuiltInRoles.OrgAdmin);
        }
        return true;
    }

    static string VerificationPurpose(User user) => "verify-email:" + user.NormalizedEmail;

    static string Link(HttpContext http, string page, string userId, string token) =>
        PageAddress(http, page, QueryString.Create(new Dictionary<string, string?> { ["user"] = userId, ["token"] = token }));

    /// <summary>The absolute address of one of this server's pages, as the email's reader will open it.</summary>
    static string PageAddress(HttpContext http, string page, QueryString query = default) =>
        Microsoft.AspNetCore.Http.Extensions.UriHelper.BuildAbsolute(http.Request.Scheme, http.Request.Host, http.Request.PathBase, page, query);

    /// <summary>
    /// Sends, its subject naming the service (Identity:Branding:Name), unless the account had its share of emails lately;
    /// a failing sender is logged, never shown to the caller.
    /// </summary>
    static async Task SendAsync(HttpContext http, IEmailSender sender, RateLimitCounters counters, ILogger logger, User user, string subject, string body)
    {
        subject = $"{http.RequestServices.GetRequiredService<Branding>().Name}: {subject}";
        if (!counters.Take("account-email|" + user.Id, PerAccount).Allowed)
        {
            logger.LogWarning("Not emailing account {UserId}: it was sent {Limit} emails in the last {Window}.", user.Id, PerAccount.PermitLimit, PerAccount.Window);
            return;
        }
        try
        {
            await sender.SendAsync(user.Email!, subject, body);
        }
        catch (Exception failure) when (failure is not OperationCanceledException)
        {
            logger.LogError(failure, "Could not email account {UserId}.", user.Id);
        }
    }
}

/// <summary>Identity's data-protected tokens with their own purpose and the (longer) life of verification links.</summary>
public sealed class VerificationTokens(IDataProtectionProvider protection, IOptions<VerificationTokens.Lifetime> options,
    ILogger<DataProtectorTokenProvider<User>> logger) : DataProtectorTokenProvider<User>(protection, options, logger)
{
    public const string ProviderName = "EmailVerification";

    public sealed class Lifetime : DataProtectionTokenProviderOptions
    {
        public Lifetime() => Name = ProviderName;
    }
}
