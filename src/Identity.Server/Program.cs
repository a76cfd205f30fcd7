using Identity.Server.Account;
using Identity.Server.Auth;
using Identity.Server.Clients;
using Identity.Server.Connect;
using Identity.Server.Audit;
using Identity.Server.Data;
using Identity.Server.Events;
using Identity.Server.Federation;
using Identity.Server.Hosting;
using Identity.Server.Mfa;
using Identity.Server.Policies;
using Identity.Server.Roles;
using Identity.Server.Scim;
using Identity.Server.Sessions;
using Identity.Server.Users;
using Identity.Server.Webhooks;

var builder = WebApplication.CreateBuilder(args);
// `keys rotate` announces the next signing keys and promotes the announced ones, then exits (keys/README.md).
if (SigningKeys.RunCommand(builder, args))
    return;

builder.AddIdentityDatabase();
builder.AddSecurityEvents();
builder.AddAccounts();
builder.AddAccountEmails();
builder.AddConnect();
builder.AddDynamicRegistration();
builder.AddSeeding();
builder.AddMfa();
builder.AddFederation();
builder.AddFederationApi();
builder.AddAudit();
builder.AddWebhooks();
builder.AddPolicies();
builder.AddScim();
builder.AddSnakeCaseJson();
builder.AddApiErrors();
builder.AddRateLimits();
builder.AddApiDocs();
builder.AddMetadataCache();
builder.AddBrowserOrigins();
builder.AddJobs();
builder.AddMetrics();
builder.AddTracing();

var app = builder.Build();

app.UseRequestIds();
app.UseApiErrors();
app.UseTransportSecurity();
app.UseBrowserOrigins();
app.UseAuthenticationRateLimits();
app.UseMetadataCache();
app.UseAuthentication();
app.UseApiRateLimits();
app.UseAuthorization();

app.MapHealth();
app.MapMetrics();
app.MapConnect();
app.MapDynamicRegistration();
app.MapConsentsApi();
app.MapAuthApi();
app.MapAccountEmails();
app.MapMfaApi();
app.MapFederation();
app.MapUsersApi();
app.MapRolesApi();
app.MapClientsApi();
app.MapAuditApi();
app.MapSessionsApi();
app.MapWebhooksApi();
app.MapPoliciesApi();
app.MapPolicyDecisions();
app.MapScim();
app.MapApiDocs();
app.MapRazorPages();

app.Run();

public partial class Program;
