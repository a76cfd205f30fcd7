using System.Net;
using System.Text;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Scim;

/// <summary>Calls /scim/v2 as a provisioning directory does: a client credentials token with scope scim, SCIM JSON in and out.</summary>
public abstract class ScimTestsBase<TFactory>(TFactory factory) : ServerTests<TFactory>(factory) where TFactory : ServerFactory
{
    protected const string ScimJson = "application/scim+json";
    protected const string UserSchema = "urn:ietf:params:scim:schemas:core:2.0:User";
    protected const string GroupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group";
    protected const string ErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";
    protected const string ListSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    protected const string PatchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

    string? scimToken;

    protected Task<string> AdminAsync() => LoginAsync(ServerFactory.AdminEmail, ServerFactory.AdminPassword);

    /// <summary>The provisioner's token, requested once per test.</summary>
    protected async Task<string> ScimTokenAsync()
    {
        if (scimToken is not null)
            return scimToken;
        var response = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Provisioner, ClientSecret = ServerFactory.ProvisionerSecret, Scope = "scim",
        });
        Assert.False(response.IsError, response.Error);
        return scimToken = response.AccessToken!;
    }

    /// <summary>A SCIM request with the provisioner's token; <paramref name="body"/> is sent as is when a string, else serialized.</summary>
    protected async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> ScimAsync(
        HttpMethod method, string path, object? body = null, params (string Name, string Value)[] headers) =>
        await SendAsync(method, path, await ScimTokenAsync(), body, headers: headers);

    protected async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> SendAsync(
        HttpMethod method, string path, string? token, object? body = null, string mediaType = ScimJson, (string Name, string Value)[]? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
            request.SetBearerToken(token);
        foreach (var (name, value) in headers ?? [])
            request.Headers.TryAddWithoutValidation(name, value);
        if (body is not null)
            request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body), Encoding.UTF8, mediaType);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode != HttpStatusCode.InternalServerError, $"{method} {path} answered 500: {text}");
        if (text.Length == 0)
            return (response.StatusCode, default, response);
        try
        {
            return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
        }
        catch (JsonException)
        {
            Assert.Fail($"{method} {path} answered {(int)response.StatusCode} with a body that is not JSON: {text}");
            throw;
        }
    }

    /// <summary>Checks the RFC 7644 §3.12 error shape and content type; the scimType, or null when there is none.</summary>
    protected static string? ScimError((HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response) answer, HttpStatusCode expected)
    {
        Assert.True(answer.Status == expected, $"expected {(int)expected}, got {(int)answer.Status}: {answer.Body}");
        Assert.Equal(ScimJson, answer.Response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(ErrorSchema, Strings(answer.Body.GetProperty("schemas")));
        var status = answer.Body.GetProperty("status");
        Assert.Equal(JsonValueKind.String, status.ValueKind);
        Assert.Equal(((int)expected).ToString(), status.GetString());
        return answer.Body.TryGetProperty("scimType", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
    }

    /// <summary>Checks a successful SCIM answer (status and content type) and returns its body.</summary>
    protected static JsonElement Ok((HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response) answer, HttpStatusCode expected = HttpStatusCode.OK)
    {
        Assert.True(answer.Status == expected, $"expected {(int)expected}, got {(int)answer.Status}: {answer.Body}");
        Assert.Equal(ScimJson, answer.Response.Content.Headers.ContentType?.MediaType);
        return answer.Body;
    }

    protected static IEnumerable<string?> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString());

    protected static string Id(JsonElement resource) => resource.GetProperty("id").GetString()!;

    protected static string Version(JsonElement resource) => resource.GetProperty("meta").GetProperty("version").GetString()!;

    /// <summary>Resources of a ListResponse; an absent Resources is an empty page.</summary>
    protected static List<JsonElement> Resources(JsonElement list)
    {
        Assert.Contains(ListSchema, Strings(list.GetProperty("schemas")));
        return list.TryGetProperty("Resources", out var resources) ? resources.EnumerateArray().ToList() : [];
    }

    /// <summary>Whether the resource has <paramref name="name"/> with a value (null counts as absent).</summary>
    protected static bool Has(JsonElement resource, string name) =>
        resource.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
        && !(value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0);

    protected static string NewEmail(string prefix = "scim") => $"{prefix}-{Guid.NewGuid():N}@example.test";

    /// <summary>POST /scim/v2/Users, checked to be 201.</summary>
    protected async Task<JsonElement> CreateScimUserAsync(string email, string? password = null, bool? active = null,
        string? externalId = null, string? displayName = null, string? givenName = null, string? familyName = null)
    {
        var user = new Dictionary<string, object?>
        {
            ["schemas"] = new[] { UserSchema },
            ["userName"] = email,
            ["emails"] = new[] { new { value = email, type = "work", primary = true } },
        };
        if (password is not null) user["password"] = password;
        if (active is not null) user["active"] = active;
        if (externalId is not null) user["externalId"] = externalId;
        if (displayName is not null) user["displayName"] = displayName;
        if (givenName is not null || familyName is not null) user["name"] = new { givenName, familyName };
        return Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Users", user), HttpStatusCode.Created);
    }

    /// <summary>POST /scim/v2/Groups with members given by user id, checked to be 201.</summary>
    protected async Task<JsonElement> CreateScimGroupAsync(string displayName, params string[] memberIds) =>
        Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Groups", new
        {
            schemas = new[] { GroupSchema },
            displayName,
            members = memberIds.Select(id => new { value = id }).ToArray(),
        }), HttpStatusCode.Created);

    /// <summary>/v1/authorize, as a service asks it: may <paramref name="principal"/> (an email or id) share a document?</summary>
    protected async Task<string> ShareDecisionAsync(string principal)
    {
        var service = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = "identity",
        });
        var answer = await ApiAsync(HttpMethod.Post, "/v1/authorize", service.AccessToken, new
        {
            principal = new { type = "User", id = principal }, action = new { type = "Action", id = "share" },
            resource = new { type = "Document", id = "scim-doc-1" },
        });
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Body.ToString());
        return answer.Body.GetProperty("decision").GetString()!;
    }

    protected static string Patch(params string[] operations) =>
        $$"""{"schemas":["{{PatchSchema}}"],"Operations":[{{string.Join(",", operations)}}]}""";

    /// <summary>The status of POST /api/v1/auth/login: 200 when the account can sign in.</summary>
    protected async Task<HttpStatusCode> LoginStatusAsync(string email, string password = Password) =>
        (await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password })).Status;

    /// <summary>GET /api/v1/audit with <paramref name="query"/>: its entries, newest first, at most 100.</summary>
    protected async Task<List<JsonElement>> AuditAsync(string admin, string query)
    {
        var answer = await ApiAsync(HttpMethod.Get, $"/api/v1/audit?limit=100&{query}", admin);
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Body.ToString());
        return answer.Body.GetProperty("entries").EnumerateArray().ToList();
    }
}
