using System.Security.Claims;
using Identity.Server.Auth;
using Identity.Server.Connect;
using Identity.Server.Roles;
using Permissions = OpenIddict.Abstractions.OpenIddictConstants.Permissions;
using RolePermissions = Identity.Server.Roles.Permissions;
using Identity.Server.Users;
using Identity.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

public static class Seeding
{
    public static WebApplicationBuilder AddSeeding(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SeedOptions>().BindConfiguration(SeedOptions.Section)
            .Validate(o => o.Clients.All(c => !string.IsNullOrWhiteSpace(c.ClientId)), "Every Identity:Clients entry needs a ClientId.")
            .Validate(o => o.Scopes.All(s => !string.IsNullOrWhiteSpace(s.Name)), "Every Identity:Scopes entry needs a Name.")
            .ValidateOnStart();
        builder.Services.AddHostedService<Seeder>();
        return builder;
    }
}

/// <summary>
/// Runs before the server listens, after the migrations: makes the configured roles, scopes, clients and admin
/// exist. Idempotent: a changed client in configuration is updated in place; nothing not in configuration is removed.
/// </summary>
sealed class Seeder(IServiceProvider services, IOptions<SeedOptions> options, ILogger<Seeder> logger) : IHostedService
{
    static readonly Dictionary<string, string> GrantPermissions = new(StringComparer.Ordinal)
    {
        [GrantTypes.AuthorizationCode] = Permissions.GrantTypes.AuthorizationCode,
        [GrantTypes.RefreshToken] = Permissions.GrantTypes.RefreshToken,
        [GrantTypes.ClientCredentials] = Permissions.GrantTypes.ClientCredentials,
        [GrantTypes.Password] = Permissions.GrantTypes.Password,
    };

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var provider = scope.ServiceProvider;

        await EnsureBuiltInRolesAsync(provider.GetRequiredService<RoleManager<Role>>());

        var scopes = provider.GetRequiredService<IOpenIddictScopeManager>();
        await UpsertScopeAsync(scopes, new ScopeOptions { Name = ServerApi.Scope, DisplayName = "This server's API", Resources = [ServerApi.Audience] }, cancellationToken);
        await UpsertScopeAsync(scopes, new ScopeOptions { Name = Scim.ScimApi.Scope, DisplayName = "Provision users and groups (SCIM)", Resources = [ServerApi.Audience] },
            cancellationToken);
        foreach (var scopeOptions in options.Value.Scopes)
            await UpsertScopeAsync(scopes, scopeOptions, cancellationToken);

        var applications = provider.GetRequiredService<IOpenIddictApplicationManager>();
        foreach (var client in options.Value.Clients.Append(AuthApiClient))
        {
            var descriptor = Describe(client);
            var existing = await applications.FindByClientIdAsync(client.ClientId, cancellationToken);
            if (existing is null)
                await applications.CreateAsync(descriptor, cancellationToken);
            else
                await applications.UpdateAsync(existing, descriptor, cancellationToken);
        }

        await EnsureAdminAsync(provider.GetRequiredService<UserManager<User>>(), provider.GetRequiredService<IdentityDbContext>(),
            provider.GetRequiredService<Events.SecurityEvents>());
    }

    /// <summary>The first-party client behind /api/v1/auth/*: public, password and refresh grants, no consent screen.</summary>
    static readonly ClientOptions AuthApiClient = new()
    {
        ClientId = AuthFacade.ClientId,
        DisplayName = "Identity auth API",
        GrantTypes = [GrantTypes.Password, GrantTypes.RefreshToken],
        Scopes = [.. AuthFacade.Scopes.Split(' ')],
        ConsentType = "implicit",
    };

    /// <summary>Built-in roles exist with at least their built-in permissions; permissions an operator added stay.</summary>
    static async Task EnsureBuiltInRolesAsync(RoleManager<Role> roles)
    {
        foreach (var definition in BuiltInRoles.All)
        {
            var role = await roles.FindByNameAsync(definition.Name);
            if (role is null)
            {
                role = new Role(definition.Name) { Description = definition.Description, OrganizationScoped = definition.OrganizationScoped };
                Check(await roles.CreateAsync(role), $"role {definition.Name}");
            }
            var held = (await roles.GetClaimsAsync(role)).Where(c => c.Type == RolePermissions.ClaimType).Select(c => c.Value).ToHashSet();
            foreach (var permission in definition.Permissions.Where(p => !held.Contains(p)))
                Check(await roles.AddClaimAsync(role, new Claim(RolePermissions.ClaimType, permission)), $"permission {permission} of {definition.Name}");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    static async Task UpsertScopeAsync(IOpenIddictScopeManager scopes, ScopeOptions options, CancellationToken cancellationToken)
    {
        var descriptor = new OpenIddictScopeDescriptor { Name = options.Name, DisplayName = options.DisplayName ?? options.Name };
        descriptor.Resources.UnionWith(options.Resources);
        var existing = await scopes.FindByNameAsync(options.Name, cancellationToken);
        if (existing is null)
            await scopes.CreateAsync(descriptor, cancellationToken);
        else
            await scopes.UpdateAsync(existing, descriptor, cancellationToken);
    }

    static OpenIddictApplicationDescriptor Describe(ClientOptions client)
    {
        var isPublic = string.IsNullOrEmpty(client.ClientSecret);
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = client.ClientId,
            ClientSecret = isPublic ? null : client.ClientSecret,
            ClientType = isPublic ? ClientTypes.Public : ClientTypes.Confidential,
            DisplayName = client.DisplayName ?? client.ClientId,
            ConsentType = client.ConsentType.ToLowerInvariant() switch
            {
                "explicit" => ConsentTypes.Explicit,
                "implicit" => ConsentTypes.Implicit,
                var other => throw Invalid(client, $"ConsentType '{other}' is not implicit or explicit"),
            },
        };

        descriptor.Permissions.Add(Permissions.Endpoints.Token);
        descriptor.Permissions.Add(Permissions.Endpoints.Revocation);
        if (!isPublic)
            descriptor.Permissions.Add(Permissions.Endpoints.Introspection);

        foreach (var grant in client.GrantTypes)
        {
            if (!GrantPermissions.TryGetValue(grant, out var permission))
                throw Invalid(client, $"grant type '{grant}' is not one of {string.Join(", ", GrantPermissions.Keys)}");
            if (isPublic && grant is GrantTypes.ClientCredentials)
                throw Invalid(client, "client_credentials needs a ClientSecret");
            descriptor.Permissions.Add(permission);
            // A password login with MFA is finished with the MFA grant: whoever may do the first may do the second.
            if (grant is GrantTypes.Password)
                descriptor.Permissions.Add(Permissions.Prefixes.GrantType + Mfa.MfaGrant.Type);
        }

        // The auth API's own client finishes its external sign-ins (/api/v1/auth/oauth/{provider}/callback) with the
        // federation grant; no configured client can be given it.
        if (client == AuthApiClient)
            descriptor.Permissions.Add(Permissions.Prefixes.GrantType + Federation.FederationGrant.Type);

        if (client.GrantTypes.Contains(GrantTypes.AuthorizationCode))
        {
            if (client.RedirectUris.Count == 0)
                throw Invalid(client, "authorization_code needs at least one RedirectUri");
            descriptor.Permissions.Add(Permissions.Endpoints.Authorization);
            descriptor.Permissions.Add(Permissions.Endpoints.EndSession);
            descriptor.Permissions.Add(Permissions.ResponseTypes.Code);
        }
        if (isPublic)
            descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);

        foreach (var uri in client.RedirectUris)
            descriptor.RedirectUris.Add(AbsoluteUri(client, uri));
        foreach (var uri in client.PostLogoutRedirectUris)
            descriptor.PostLogoutRedirectUris.Add(AbsoluteUri(client, uri));
        foreach (var scope in client.Scopes.Where(s => s != Scopes.OpenId))
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        return descriptor;
    }

    static Uri AbsoluteUri(ClientOptions client, string uri) =>
        // On Unix "/path" parses as an absolute file URI: require a real scheme (https, or a native app's own).
        Uri.TryCreate(uri, UriKind.Absolute, out var result) && !result.IsFile && !result.IsUnc && string.IsNullOrEmpty(result.Fragment)
            ? result
            : throw Invalid(client, $"'{uri}' is not an absolute URI without a fragment");

    static InvalidOperationException Invalid(ClientOptions client, string problem) =>
        new($"Identity:Clients entry '{client.ClientId}': {problem}.");

    async Task EnsureAdminAsync(UserManager<User> users, IdentityDbContext db, Events.SecurityEvents events)
    {
        var (email, password) = (options.Value.Admin.Email, options.Value.Admin.Password);
        if (string.IsNullOrWhiteSpace(email) || string.IsNullOrEmpty(password))
            return;

        var admin = await users.FindByEmailAsync(email);
        if (admin is null)
        {
            admin = new User { Email = email, EmailConfirmed = true, Name = "Administrator" };
            Check(await Accounts.CreateAsync(users, db, events, admin, password, [BuiltInRoles.Admin]), "admin user");
            logger.LogInformation("Created the admin user {Email}.", email);
        }
        else if (!await users.IsInRoleAsync(admin, BuiltInRoles.Admin))
            Check(await users.AddToRoleAsync(admin, BuiltInRoles.Admin), "admin role");
    }

    static void Check(IdentityResult result, string what)
    {
        if (!result.Succeeded)
            throw new InvalidOperationException($"Could not create the {what}: {string.Join(" ", result.Errors.Select(e => e.Description))}");
    }
}
