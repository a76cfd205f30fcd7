using Identity.Server.Account;
using Identity.Server.Auth;
using Identity.Server.Clients;
using Identity.Server.Connect;
using Identity.Server.Data;
using Identity.Server.Hosting;

var builder = WebApplication.CreateBuilder(args);

builder.AddIdentityDatabase();
builder.AddAccounts();
builder.AddConnect();
builder.AddSeeding();

var app = builder.Build();

app.UseApiErrors();
app.UseTransportSecurity();
app.UseAuthentication();
app.UseAuthorization();

app.MapHealth();
app.MapConnect();
app.MapAuthApi();
app.MapRazorPages();

app.Run();

public partial class Program;
