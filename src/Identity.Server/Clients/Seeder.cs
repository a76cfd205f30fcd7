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
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var provider = scope.ServiceProvider;

        await EnsureBuiltInRolesAsync(provider.GetRequiredService<RoleManager<Role>>());

        var scopes = provider.GetRequiredService<IOpenIddictScopeManager>();
        await UpsertScopeAsync(scopes, new ScopeOptions { Name = ServerApi.Scope, DisplayName = "This server's API", Resources = [ServerApi.Audience] }, cancellationToken);
        await UpsertScopeAsync(scopes, new ScopeOptions { Name = Scim.ScimApi.Scope, DisplayName = "Provision users and groups (SCIM)", Resources = [ServerApi.Audience] },
            cancellationToken);
        await UpsertScopeAsync(scopes, new ScopeOptions { Name = Hosting.ServerMetrics.Scope, DisplayName = "Read the server's metrics", Resources = [ServerApi.Audience] },
            cancellationToken);
        foreach (var scopeOptions in options.Value.Scopes)
            await UpsertScopeAsync(scopes, scopeOptions, cancellationToken);

        var applications = provider.GetRequiredService<IOpenIddictApplicationManager>();
        foreach (var configured in options.Value.Clients.Append(AuthApiClient))
        {
            var existing = await applications.FindByClientIdAsync(configured.ClientId, cancellationToken);
            if (await WithRemoteKeysAsync(configured, existing, applications, provider.GetRequiredService<RemoteKeys>(), cancellationToken) is not { } client)
                continue;
            var descriptor = Describe(client);
            if (client.JwksUri is { } jwksUri)
                descriptor.Properties[RemoteKeys.Property] = System.Text.Json.JsonSerializer.SerializeToElement(jwksUri);
            if (existing is null)
                await applications.CreateAsync(descriptor, cancellationToken);
            else
                await applications.UpdateAsync(existing, descriptor, cancellationToken);
        }
        await AllowPushedAuthorizationAsync(applications, cancellationToken);

        await EnsureAdminAsync(provider.GetRequiredService<UserManager<User>>(), provider.GetRequiredService<IdentityDbContext>(),
            provider.GetRequiredService<Events.SecurityEvents>());
    }

    /// <summary>
    /// Clients registered through the API before pushed authorization requests existed may push too, as new ones may:
    /// libraries that push whenever discovery offers it (Duende's OidcClient) would otherwise be refused.
    /// </summary>
    static async Task AllowPushedAuthorizationAsync(IOpenIddictApplicationManager applications, CancellationToken cancellationToken)
    {
        var lacking = new List<object>();
        await foreach (var application in applications.ListAsync(cancellationToken: cancellationToken))
        {
            var permissions = await applications.GetPermissionsAsync(application, cancellationToken);
            if (permissions.Contains(Permissions.Endpoints.Authorization) && !permissions.Contains(Permissions.Endpoints.PushedAuthorization))
                lacking.Add(application);
        }
        foreach (var application in lacking)
        {
            var descriptor = new OpenIddictApplicationDescriptor();
            await applications.PopulateAsync(descriptor, application, cancellationToken);
            descriptor.Permissions.Add(Permissions.Endpoints.PushedAuthorization);
            await applications.UpdateAsync(application, descriptor, cancellationToken);
        }
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

    /// <summary>
    /// A client configured with a jwks_uri, with the keys found there now; if the address does not answer, with the keys
    /// it had from the last start, or, for a client new to this database, none: it is left out until a start that can
    /// fetch them, rather than the whole server failing to start over one client's site.
    /// </summary>
    async Task<ClientOptions?> WithRemoteKeysAsync(ClientOptions client, object? existing, IOpenIddictApplicationManager applications, RemoteKeys remote,
        CancellationToken cancellationToken)
    {
        if (client.JwksUri is not { } uri)
            return client;
        if (!string.IsNullOrEmpty(client.Jwks) || !string.IsNullOrEmpty(client.ClientSecret))
            throw new InvalidOperationException($"Identity:Clients entry '{client.ClientId}': JwksUri goes without Jwks and without ClientSecret.");
        if (remote.ProblemWithUri(uri) is { } problem)
            throw new InvalidOperationException($"Identity:Clients entry '{client.ClientId}': {problem}");
        try
        {
            return client.WithJwks(ClientsApi.KeysView(await remote.FetchAsync(uri, cancellationToken))!.Value.GetRawText());
        }
        catch (InvalidClientException failed)
        {
            if (existing is not null && await applications.GetJsonWebKeySetAsync(existing, cancellationToken) is { } stored)
            {
                logger.LogWarning("Client {ClientId}: {Reason}; the keys from the last start are kept.", client.ClientId, failed.Message);
                return client.WithJwks(ClientsApi.KeysView(stored)!.Value.GetRawText());
            }
            logger.LogError("Client {ClientId} is left out: {Reason}. It is added at a start that can fetch its keys.", client.ClientId, failed.Message);
            return null;
        }
    }

    static OpenIddictApplicationDescriptor Describe(ClientOptions client)
    {
        try
        {
            return ClientRegistration.Describe(client, firstParty: client == AuthApiClient);
        }
        catch (InvalidClientException invalid)
        {
            throw new InvalidOperationException($"Identity:Clients entry '{client.ClientId}': {invalid.Message}.");
        }
    }

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
