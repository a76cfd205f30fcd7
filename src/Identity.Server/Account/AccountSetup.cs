using System.Security.Claims;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account;

public static class AccountSetup
{
    public static WebApplicationBuilder AddAccounts(this WebApplicationBuilder builder)
    {
        builder.Services.AddIdentity<User, Role>(options =>
            {
                options.User.RequireUniqueEmail = true;
                // NIST 800-63B: length over composition rules.
                options.Password.RequiredLength = 12;
                options.Password.RequireDigit = false;
                options.Password.RequireLowercase = false;
                options.Password.RequireUppercase = false;
                options.Password.RequireNonAlphanumeric = false;
                options.Password.RequiredUniqueChars = 1;
                options.Lockout.MaxFailedAccessAttempts = 5;
                options.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(15);
                options.Lockout.AllowedForNewUsers = true;
                options.ClaimsIdentity.UserIdClaimType = OpenIddict.Abstractions.OpenIddictConstants.Claims.Subject;
                options.ClaimsIdentity.UserNameClaimType = OpenIddict.Abstractions.OpenIddictConstants.Claims.Name;
                options.ClaimsIdentity.RoleClaimType = Connect.ClaimDestinations.Roles;
                options.ClaimsIdentity.EmailClaimType = OpenIddict.Abstractions.OpenIddictConstants.Claims.Email;
                // Keycloak's "Verify email": an account signs in only once its address is proven (Users.Accounts.AwaitsVerification).
                options.SignIn.RequireConfirmedEmail = builder.Configuration.GetValue(Users.Accounts.RequireVerifiedEmailSetting, false);
            })
            .AddPasswordValidator<CommonPasswordValidator>()
            .AddPasswordValidator<PasswordHistory>()
            .AddEntityFrameworkStores<IdentityDbContext>()
            .AddDefaultTokenProviders();

        // Passkeys (Account/Pages/Passkeys) must prove the user, by PIN or biometrics, not only the device: a passkey
        // sign-in then counts as two factors. The relying party id is the host the browser sees, so the passkeys of a
        // server work under its public name only.
        builder.Services.Configure<IdentityPasskeyOptions>(passkeys => passkeys.UserVerificationRequirement = "required");

        builder.Services.ConfigureApplicationCookie(cookie =>
        {
            cookie.LoginPath = "/Account/Login";
            cookie.LogoutPath = "/connect/endsession";
            cookie.Cookie.Name = "identity.session";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Lax;
            cookie.ExpireTimeSpan = TimeSpan.FromHours(8);
            cookie.SlidingExpiration = true;
        });

        // Every minute (not ASP.NET Core's 30) the session cookie is checked against the database and rebuilt: a changed
        // or reset password (a new security stamp) or a deleted account ends browser sessions within a minute, before
        // they can authorize new tokens. The claims of the sign-in itself (how and when the user authenticated, through
        // which provider) exist only in the cookie: keep them, or later tokens would lose their MFA evidence and
        // max_age would count from the rebuild (BrowserSession.SignInClaims).
        builder.Services.Configure<SecurityStampValidatorOptions>(options =>
        {
            options.ValidationInterval = TimeSpan.FromMinutes(1);
            options.OnRefreshingPrincipal = context =>
            {
                if (context.NewPrincipal?.Identity is ClaimsIdentity renewed && context.CurrentPrincipal is { } current)
                    renewed.AddClaims(BrowserSession.SignInClaims(current));
                return Task.CompletedTask;
            };
        });

        builder.Services.AddSingleton<FailedSignIns>();
        var branding = Branding.Load(builder.Configuration);
        builder.Services.AddSingleton(branding);
        // Each page names its route (@page "/Account/Login"), so the folder layout does not leak into URLs.
        builder.Services.AddRazorPages(pages =>
        {
            pages.RootDirectory = "/Account/Pages";
            pages.Conventions.ConfigureFilter(new PageSecurityHeaders(branding));
        });
        return builder;
    }
}
