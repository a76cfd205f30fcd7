using System.Text.Json.Nodes;
using Identity.Server.Connect;
using Identity.Server.Users;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace Identity.Server.Scim;

/// <summary>
/// SCIM 2.0 (RFC 7643, RFC 7644) at /scim/v2: an enterprise directory (Microsoft Entra ID, Okta, ...) creates,
/// changes, deactivates and deletes this server's users and groups. The directory is a client acting for itself
/// (client credentials) with the scope <see cref="Scope"/>; no user token reaches these endpoints.
/// </summary>
public static class ScimApi
{
    public const string Scope = "scim";

    /// <summary>The client property naming the organization (email domain) a tenant's SCIM client provisions.</summary>
    public const string OrganizationProperty = "scim_organization";
    public const string Policy = "scim";
    public static readonly PathString Prefix = "/scim/v2";

    /// <summary>The most resources one list answer holds (ServiceProviderConfig's filter.maxResults).</summary>
    public const int MaxResults = 200;

    public static WebApplicationBuilder AddScim(this WebApplicationBuilder builder)
    {
        builder.Services.AddAuthorizationBuilder().AddPolicy(Policy, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => ServerApi.IsClient(context.User) && context.User.HasScope(Scope)));
        return builder;
    }

    public static IEndpointRouteBuilder MapScim(this IEndpointRouteBuilder app)
    {
        var scim = app.MapGroup(Prefix).WithTags("SCIM").RequireAuthorization(Policy)
            .AddEndpointFilter(async (context, next) =>
            {
                try
                {
                    return await next(context);
                }
                catch (ScimException refused)
                {
                    return refused.ToResult();
                }
            });
        scim.MapGet("/ServiceProviderConfig", ServiceProviderConfig).WithSummary("What this SCIM service supports");
        scim.MapGet("/ResourceTypes", (HttpContext http, UserAttributes attributes) =>
                ScimJson.Resource(ScimJson.ListResponse(2, 1, [UserType(http, attributes), GroupType(http)])))
            .WithSummary("The resource types: User and Group");
        scim.MapGet("/ResourceTypes/{name}", (HttpContext http, string name, UserAttributes attributes) => name switch
        {
            "User" => ScimJson.Resource(UserType(http, attributes)),
            "Group" => ScimJson.Resource(GroupType(http)),
            _ => ScimErrors.NotFound(name),
        }).WithSummary("A resource type");
        scim.MapGet("/Schemas", (UserAttributes attributes) =>
            {
                List<JsonObject> schemas = [UserSchema(attributes), GroupSchema(), .. EnterpriseSchema(attributes) is { } enterprise ? [enterprise] : Array.Empty<JsonObject>()];
                return ScimJson.Resource(ScimJson.ListResponse(schemas.Count, 1, schemas));
            })
            .WithSummary("The schemas of User, Group and the enterprise extension, as far as this server stores them");
        scim.MapGet("/Schemas/{id}", (string id, UserAttributes attributes) => id switch
        {
            ScimSchemas.User => ScimJson.Resource(UserSchema(attributes)),
            ScimSchemas.Group => ScimJson.Resource(GroupSchema()),
            ScimSchemas.EnterpriseUser when EnterpriseSchema(attributes) is { } enterprise => ScimJson.Resource(enterprise),
            _ => ScimErrors.NotFound(id),
        }).WithSummary("A schema");
        ScimUsers.Map(scim.MapGroup("/Users"));
        ScimGroups.Map(scim.MapGroup("/Groups"));
        ScimBulk.Map(scim);
        return app;
    }

    /// <summary>The organization (email domain) the client provisions, or null for a server-wide SCIM client.</summary>
    public static async Task<string?> OrganizationOfAsync(IOpenIddictApplicationManager applications, object application) =>
        (await applications.GetPropertiesAsync(application)).TryGetValue(OrganizationProperty, out var domain) &&
        domain.ValueKind == System.Text.Json.JsonValueKind.String
            ? domain.GetString()
            : null;

    /// <summary>The absolute address of a resource, for meta.location, $ref and the Location header.</summary>
    public static string Location(HttpContext http, string type, string id) => Absolute(http, Prefix.Add(new PathString($"/{type}/{id}")));

    static string Absolute(HttpContext http, PathString path) =>
        Microsoft.AspNetCore.Http.Extensions.UriHelper.BuildAbsolute(http.Request.Scheme, http.Request.Host, http.Request.PathBase, path);

    static IResult ServiceProviderConfig(HttpContext http) => ScimJson.Resource(new JsonObject
    {
        ["schemas"] = new JsonArray(ScimSchemas.ServiceProviderConfig),
        ["patch"] = new JsonObject { ["supported"] = true },
        ["bulk"] = new JsonObject { ["supported"] = true, ["maxOperations"] = ScimBulk.MaxOperations, ["maxPayloadSize"] = ScimErrors.MaxBodyBytes },
        ["filter"] = new JsonObject { ["supported"] = true, ["maxResults"] = MaxResults },
        ["changePassword"] = new JsonObject { ["supported"] = true },
        ["sort"] = new JsonObject { ["supported"] = true },
        ["etag"] = new JsonObject { ["supported"] = true },
        ["authenticationSchemes"] = new JsonArray(new JsonObject
        {
            ["type"] = "oauthbearertoken",
            ["name"] = "OAuth Bearer Token",
            ["description"] = $"An access token from this server's token endpoint (client credentials) with the scope '{Scope}'.",
            ["specUri"] = "https://www.rfc-editor.org/rfc/rfc6750",
            ["primary"] = true,
        }),
        ["meta"] = new JsonObject { ["resourceType"] = "ServiceProviderConfig", ["location"] = Absolute(http, Prefix.Add("/ServiceProviderConfig")) },
    });

    static JsonObject UserType(HttpContext http, UserAttributes attributes)
    {
        var type = ResourceType(http, "User", "/Users", ScimSchemas.User, "User accounts");
        if (EnterpriseSchema(attributes) is not null)
            type["schemaExtensions"] = new JsonArray(new JsonObject { ["schema"] = ScimSchemas.EnterpriseUser, ["required"] = false });
        return type;
    }

    static JsonObject GroupType(HttpContext http) => ResourceType(http, "Group", "/Groups", ScimSchemas.Group, "Groups of users");

    static JsonObject ResourceType(HttpContext http, string name, string endpoint, string schema, string description) => new()
    {
        ["schemas"] = new JsonArray(ScimSchemas.ResourceType),
        ["id"] = name,
        ["name"] = name,
        ["endpoint"] = endpoint,
        ["description"] = description,
        ["schema"] = schema,
        ["meta"] = new JsonObject { ["resourceType"] = "ResourceType", ["location"] = Location(http, "ResourceTypes", name) },
    };

    static JsonObject Attribute(string name, string type = "string", bool required = false, bool multiValued = false, string mutability = "readWrite",
        string uniqueness = "none", bool caseExact = false, params JsonObject[] subAttributes)
    {
        var attribute = new JsonObject
        {
            ["name"] = name, ["type"] = type, ["multiValued"] = multiValued, ["required"] = required, ["caseExact"] = caseExact,
            ["mutability"] = mutability, ["returned"] = "default", ["uniqueness"] = uniqueness,
        };
        if (subAttributes.Length > 0)
            attribute["subAttributes"] = new JsonArray([.. subAttributes]);
        return attribute;
    }

    static JsonObject Schema(string id, string name, params JsonObject[] attributes) => new()
    {
        ["schemas"] = new JsonArray(ScimSchemas.Schema),
        ["id"] = id,
        ["name"] = name,
        ["attributes"] = new JsonArray([.. attributes]),
    };

    // Only what this server stores: a directory's other attributes (title, phoneNumbers, the enterprise extension)
    // are accepted and not kept, but for those declared as user attributes (Identity:UserAttributes:N:Scim).
    static JsonObject UserSchema(UserAttributes attributes) => Schema(ScimSchemas.User, "User", [
        .. UserSchemaAttributes(),
        .. attributes.ScimMappings.Where(m => m.Extension is null).Select(m => Attribute(m.Attribute))]);

    static JsonObject? EnterpriseSchema(UserAttributes attributes) =>
        attributes.ScimMappings.Where(m => m.Extension is not null).Select(m => Attribute(m.Attribute)).ToArray() is { Length: > 0 } kept
            ? Schema(ScimSchemas.EnterpriseUser, "EnterpriseUser", kept)
            : null;

    static JsonObject[] UserSchemaAttributes() =>
    [
        Attribute("userName", required: true, uniqueness: "server"),
        Attribute("externalId", caseExact: true),
        Attribute("name", "complex", subAttributes: [Attribute("formatted"), Attribute("givenName"), Attribute("familyName")]),
        Attribute("displayName"),
        Attribute("active", "boolean"),
        Attribute("password", mutability: "writeOnly"),
        Attribute("emails", "complex", multiValued: true, subAttributes: [Attribute("value"), Attribute("type"), Attribute("primary", "boolean")]),
        Attribute("groups", "complex", multiValued: true, mutability: "readOnly",
            subAttributes: [Attribute("value", mutability: "readOnly"), Attribute("display", mutability: "readOnly"), Attribute("$ref", "reference", mutability: "readOnly")]),
    ];

    static JsonObject GroupSchema() => Schema(ScimSchemas.Group, "Group",
        Attribute("displayName", required: true, uniqueness: "server"),
        Attribute("externalId", caseExact: true),
        Attribute("members", "complex", multiValued: true,
            subAttributes: [Attribute("value", mutability: "immutable"), Attribute("display", mutability: "readOnly"), Attribute("type", mutability: "immutable"), Attribute("$ref", "reference", mutability: "immutable")]));
}
