using Identity.Server.Data;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenIddict.Server;
using OpenIddict.Validation.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

public static class ConnectSetup
{
    public static WebApplicationBuilder AddConnect(this WebApplicationBuilder builder)
    {
        var tokens = builder.Configuration.GetSection(TokenOptions.Section).Get<TokenOptions>() ?? new();
        var keyOptions = builder.Configuration.GetSection(KeyOptions.Section).Get<KeyOptions>() ?? new();
        var keys = SigningKeys.LoadOrCreate(SigningKeys.FolderOf(builder));
        var issuer = builder.Configuration["Identity:Issuer"];
        var scopes = new ScopeResources(builder.Configuration.GetSection(Clients.SeedOptions.Section).Get<Clients.SeedOptions>()?.Scopes ?? []);
        builder.Services.AddSingleton(scopes);
        var attributes = Users.UserAttributes.Load(builder.Configuration, [Scopes.Profile, Scopes.Email, Scopes.Roles, .. scopes.Names]);
        builder.Services.AddSingleton(attributes);
        builder.Services.AddSingleton(keys);
        builder.Services.AddSingleton(tokens);
        builder.Services.AddSingleton<DPoPNonces>();

        // The key ring is shared through the database and encrypted at rest with the server's encryption certificate;
        // keys written under an earlier (or the announced) certificate stay readable (keys rotate).
        builder.Services.AddDataProtection()
            .SetApplicationName("Identity")
            .PersistKeysToDbContext<IdentityDbContext>()
            .ProtectKeysWithCertificate(keys.Encryption)
            .UnprotectKeysWithAnyCertificate([keys.Encryption, .. keys.AcceptedEncryption]);

        builder.Services.AddScoped<PrincipalFactory>();
        builder.Services.AddScoped<Sessions.SessionStore>();
        builder.Services.AddSingleton<Sessions.BackchannelLogout>();
        builder.Services.AddHostedService(services => services.GetRequiredService<Sessions.BackchannelLogout>());
        builder.Services.AddSingleton<VerifiedSecrets>();
        builder.Services.AddSingleton<ClientSnapshots>();
        builder.Services.AddSingleton<Clients.RemoteKeys>();
        builder.Services.AddHttpClient(Clients.RemoteKeys.ClientName, client => client.Timeout = TimeSpan.FromSeconds(5))
            .ConfigurePrimaryHttpMessageHandler(services => OutboundAddresses.Handler(services.GetRequiredService<Clients.RemoteKeys>().AllowPrivateNetworks));
        builder.Services.AddSingleton<VerifiedAccessTokens>();
        builder.Services.AddScoped<OpenIddict.Abstractions.IOpenIddictApplicationCache<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>, ClientCache>();
        builder.Services.AddOpenIddict()
            .AddCore(core =>
            {
                core.UseEntityFrameworkCore().UseDbContext<IdentityDbContext>();
                core.ReplaceApplicationManager(typeof(ApplicationManager<>));
            })
            .AddServer(server =>
            {
                // RFC 8414's address beside OpenID Connect's: OAuth-only clients (MCP clients among them) look there first.
                server.SetConfigurationEndpointUris(".well-known/openid-configuration", ".well-known/oauth-authorization-server")
                    .SetAuthorizationEndpointUris("connect/authorize")
                    .SetPushedAuthorizationEndpointUris("connect/par")
                    .SetDeviceAuthorizationEndpointUris("connect/device")
                    .SetEndUserVerificationEndpointUris("connect/verify")
                    .SetTokenEndpointUris("connect/token")
                    .SetUserInfoEndpointUris("connect/userinfo")
                    .SetEndSessionEndpointUris("connect/endsession")
                    .SetIntrospectionEndpointUris("connect/introspect")
                    .SetRevocationEndpointUris("connect/revoke");

                server.AllowAuthorizationCodeFlow()
                    .AllowRefreshTokenFlow()
                    .AllowClientCredentialsFlow()
                    .AllowPasswordFlow()
                    .AllowDeviceAuthorizationFlow()
                    .AllowTokenExchangeFlow()
                    .AllowCustomFlow(Mfa.MfaGrant.Type)
                    .AllowCustomFlow(Federation.FederationGrant.Type);

                // OpenID Connect's Initiating User Registration: prompt=create opens the registration page.
                if (Users.Accounts.RegistrationOpen(builder.Configuration))
                    server.RegisterPromptValues(PromptValues.Create);

                // RFC 9700: PKCE with S256 only; "plain" offers no protection against an intercepted code.
                server.Configure(options => options.CodeChallengeMethods.Remove(CodeChallengeMethods.Plain));

                // Known up front, so OpenIddict validates requested scopes without asking the database each time.
                server.RegisterScopes([Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.Roles, Scopes.OfflineAccess, .. scopes.Names]);
                server.RegisterClaims(Claims.Subject, Claims.AuthenticationTime, Claims.AuthenticationContextReference, Claims.Name, Claims.Email, Claims.EmailVerified,
                    ClaimDestinations.Roles, ClaimDestinations.Groups, ClaimDestinations.SessionId, Claims.AuthenticationMethodReference, ClaimDestinations.IdentityProvider,
                    ClaimDestinations.OrganizationId, ClaimDestinations.OrganizationDomain, ClaimDestinations.Actor);
                server.RegisterClaims([.. attributes.Declared.Select(a => a.Name)]);

                server.SetAccessTokenLifetime(tokens.AccessTokenLifetime)
                    .SetRefreshTokenLifetime(tokens.RefreshTokenLifetime)
                    .SetAuthorizationCodeLifetime(tokens.AuthorizationCodeLifetime)
                    .SetIdentityTokenLifetime(tokens.IdentityTokenLifetime);

                // No grace period: a refresh token presented twice is treated as stolen and its whole chain revoked.
                server.SetRefreshTokenReuseLeeway(TimeSpan.Zero);

                if (!tokens.EncryptAccessTokens)
                    server.DisableAccessTokenEncryption();
                if (!string.IsNullOrWhiteSpace(issuer))
                    server.SetIssuer(new Uri(issuer, UriKind.Absolute));

                keys.AddTo(server, builder.Services, keyOptions.SigningAlgorithm);

                Auth.AuthFacade.AddTo(server);
                // RFC 7662 2.1: introspection is a POST. OpenIddict also reads GET, which puts the token in a URL, and
                // URLs end up in access logs and proxies.
                server.RemoveEventHandler(OpenIddict.Server.AspNetCore.OpenIddictServerAspNetCoreHandlers.ExtractGetOrPostRequest<ExtractIntrospectionRequestContext>.Descriptor);
                server.AddEventHandler(OpenIddict.Server.AspNetCore.OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractIntrospectionRequestContext>.Descriptor);
                server.AddEventHandler(RejectRepeatedParameters<ValidateAuthorizationRequestContext>.Descriptor);
                server.AddEventHandler(RejectRepeatedParameters<ValidateTokenRequestContext>.Descriptor);
                server.AddEventHandler(RejectRepeatedParameters<ValidateIntrospectionRequestContext>.Descriptor);
                server.AddEventHandler(RejectRepeatedParameters<ValidateRevocationRequestContext>.Descriptor);
                server.RemoveEventHandler(OpenIddictServerHandlers.InferEndpointType.Descriptor);
                server.AddEventHandler(EndpointMatcher.Descriptor);
                server.RemoveEventHandler(OpenIddictServerHandlers.Exchange.ValidateScopes.Descriptor);
                server.AddEventHandler(KnownScopes.Descriptor);
                server.AddEventHandler(PrivateTokenProtection.Descriptor);
                server.RemoveEventHandler(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor);
                server.AddEventHandler(RevokeTokenOrSession.Descriptor);
                server.AddEventHandler(Sessions.RecordSession.Descriptor);
                server.AddEventHandler(ReportTokenReuse.Descriptor);
                server.AddEventHandler(DiscoveryExtras.Descriptor);
                server.AddEventHandler(Clients.RemoteKeys.BeforeAssertion.Descriptor);
                server.AddEventHandler(RequestObjects.Authorization.Descriptor);
                server.AddEventHandler(RequestObjects.Pushed.Descriptor);
                server.AddEventHandler(AuthenticationContext.TokenRequests.Descriptor);
                server.AddEventHandler(ClientAssertionReplay.Descriptor);
                server.AddEventHandler(ClientAssertionFailure.Descriptor);
                server.AddEventHandler(SelfContainedAccessTokens.Descriptor);
                server.AddEventHandler(SessionOfAccessToken.Server.Descriptor);
                server.AddEventHandler(SessionRefreshTokens.Issue.Descriptor);
                server.AddEventHandler(SessionRefreshTokens.Redeem.Descriptor);
                server.AddEventHandler(SessionRefreshTokens.Check.Descriptor);
                server.AddEventHandler(RefreshTokenClaims.Descriptor);
                server.AddEventHandler(SessionMaxLifetime.Descriptor);
                server.AddEventHandler(DPoP.CheckTokenRequest.Descriptor);
                server.AddEventHandler(DPoP.RequireForClient.Descriptor);
                server.AddEventHandler(DPoP.CheckBoundGrant.Descriptor);
                server.AddEventHandler(DPoP.BindCode.Descriptor);
                server.AddEventHandler(DPoP.BindTokens.Descriptor);
                server.AddEventHandler(DPoP.AnnounceTokenType.Descriptor);
                server.AddEventHandler(DPoP.ExtractUserInfoDPoPToken.Descriptor);
                server.RemoveEventHandler(OpenIddictServerHandlers.Protection.ValidateProofOfPossession.Descriptor);
                server.AddEventHandler(DPoP.CheckServerTokenUse.Descriptor);
                server.AddEventHandler(DPoP.ChallengeUserInfoRequest.Descriptor);

                server.UseAspNetCore()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableTokenEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough()
                    .EnableEndUserVerificationEndpointPassthrough()
                    // TransportSecurity enforces HTTPS itself, with the loopback and Development exceptions.
                    .DisableTransportSecurityRequirement();
            })
            .AddValidation(validation =>
            {
                // The server's own APIs: tokens from this server, for this audience, and still valid in the store
                // (so a revoked token or a revoked session is refused at once, not at expiry).
                validation.UseLocalServer();
                validation.AddAudiences(ServerApi.Audience);
                validation.EnableTokenEntryValidation();
                validation.EnableAuthorizationEntryValidation();
                validation.AddEventHandler(SessionOfAccessToken.Validation.Descriptor);
                validation.AddEventHandler(VerifiedAccessTokens.Reuse.Descriptor);
                validation.AddEventHandler(VerifiedAccessTokens.Remember.Descriptor);
                validation.AddEventHandler(DPoP.ExtractDPoPToken.Descriptor);
                // DPoP.CheckBinding checks bound tokens instead: OpenIddict's check knows only mTLS's binding.
                validation.RemoveEventHandler(OpenIddict.Validation.OpenIddictValidationHandlers.Protection.ValidateProofOfPossession.Descriptor);
                validation.AddEventHandler(DPoP.CheckBinding.Descriptor);
                validation.AddEventHandler(DPoP.ChallengeApiRequest.Descriptor);
                validation.UseAspNetCore();
            });

        builder.Services.Replace(ServiceDescriptor.Scoped<OpenIddict.Server.IOpenIddictServerDispatcher, IndexedDispatcher>());

        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(ServerApi.Policy, policy => policy
                .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => !ServerApi.IsClient(context.User)))
            .AddPolicy(ServerApi.ServicePolicy, policy => policy
                .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => ServerApi.IsClient(context.User)));
        return builder;
    }
}
