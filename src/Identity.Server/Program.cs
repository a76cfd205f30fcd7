using Identity.Server.Account;
using Identity.Server.Auth;
using Identity.Server.Clients;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Hosting;
using Identity.Server.Mfa;
using Identity.Server.Policies;
using Identity.Server.Roles;
using Identity.Server.Users;

var builder = WebApplication.CreateBuilder(args);

builder.AddIdentityDatabase();
builder.AddAccounts();
builder.AddConnect();
builder.AddSeeding();
builder.AddMfa();
builder.AddPolicies();
builder.AddSnakeCaseJson();
builder.AddRateLimits();
builder.AddApiDocs();
builder.AddMetadataCache();

var app = builder.Build();

app.UseRequestIds();
app.UseApiErrors();
app.UseTransportSecurity();
app.UseAuthenticationRateLimits();
app.UseMetadataCache();
app.UseAuthentication();
app.UseApiRateLimits();
app.UseAuthorization();

app.MapHealth();
app.MapConnect();
app.MapAuthApi();
app.MapMfaApi();
app.MapUsersApi();
app.MapRolesApi();
app.MapPoliciesApi();
app.MapPolicyDecisions();
app.MapApiDocs();
app.MapRazorPages();

app.Run();

public partial class Program;
