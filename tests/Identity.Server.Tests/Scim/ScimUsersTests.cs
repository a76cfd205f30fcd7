using System.Net;
using System.Text.Json;
using Duende.IdentityModel.Client;
using Identity.Server.Tests.Infrastructure;

namespace Identity.Server.Tests.Scim;

public sealed class SqliteScimUsersTests(SqliteServer server) : ScimUsersTests<SqliteServer>(server);
public sealed class PostgreSqlScimUsersTests(PostgreSqlServer server) : ScimUsersTests<PostgreSqlServer>(server);

/// <summary>SCIM 2.0 (RFC 7643/7644) at /scim/v2: who may call it, discovery, and the User resource as Entra ID and Okta use it.</summary>
public abstract class ScimUsersTests<TFactory>(TFactory factory) : ScimTestsBase<TFactory>(factory) where TFactory : ServerFactory
{
    static string Q(string value) => Uri.EscapeDataString(value);

    [Fact]
    public async Task Scim_NeedsATokenWithScopeScim()
    {
        var service = await Http.RequestClientCredentialsTokenAsync(new ClientCredentialsTokenRequest
        {
            Address = "/connect/token", ClientId = ServerFactory.Service, ClientSecret = ServerFactory.ServiceSecret, Scope = "identity",
        });
        Assert.False(service.IsError, service.Error);
        var admin = await AdminAsync();
        var provisioner = await ScimTokenAsync();
        var email = NewEmail();

        foreach (var path in new[] { "/scim/v2/Users", "/scim/v2/Groups", "/scim/v2/ServiceProviderConfig", "/scim/v2/ResourceTypes", "/scim/v2/Schemas" })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(HttpMethod.Get, path, null)).Status);
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(HttpMethod.Get, path, "not-a-token")).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Get, path, service.AccessToken)).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Get, path, admin)).Status);
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, path, provisioner)).Status);
        }
        var byAdmin = await SendAsync(HttpMethod.Post, "/scim/v2/Users", admin, new { schemas = new[] { UserSchema }, userName = email });
        var anonymous = await SendAsync(HttpMethod.Post, "/scim/v2/Users", null, new { schemas = new[] { UserSchema }, userName = email });

        // Refusals are SCIM errors too.
        ScimError(byAdmin, HttpStatusCode.Forbidden);
        ScimError(anonymous, HttpStatusCode.Unauthorized);
        Assert.Empty(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q($"userName eq \"{email}\"")}"))));
    }

    [Fact]
    public async Task Discovery_ServiceProviderConfigResourceTypesAndSchemas()
    {
        var config = Ok(await ScimAsync(HttpMethod.Get, "/scim/v2/ServiceProviderConfig"));
        var types = Ok(await ScimAsync(HttpMethod.Get, "/scim/v2/ResourceTypes"));
        var schemas = Ok(await ScimAsync(HttpMethod.Get, "/scim/v2/Schemas"));

        Assert.Contains("urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig", Strings(config.GetProperty("schemas")));
        Assert.True(config.GetProperty("patch").GetProperty("supported").GetBoolean());
        Assert.True(config.GetProperty("filter").GetProperty("supported").GetBoolean());
        Assert.Equal(200, config.GetProperty("filter").GetProperty("maxResults").GetInt32());
        Assert.True(config.GetProperty("bulk").GetProperty("supported").GetBoolean());
        Assert.True(config.GetProperty("sort").GetProperty("supported").GetBoolean());
        Assert.Contains(config.GetProperty("authenticationSchemes").EnumerateArray(),
            s => string.Equals(s.GetProperty("type").GetString(), "oauthbearertoken", StringComparison.OrdinalIgnoreCase));
        var typeNames = Resources(types).Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.Contains("User", typeNames);
        Assert.Contains("Group", typeNames);
        var schemaIds = Resources(schemas).Select(s => s.GetProperty("id").GetString()).ToList();
        Assert.Contains(UserSchema, schemaIds);
        Assert.Contains(GroupSchema, schemaIds);
    }

    [Fact]
    public async Task Users_CreateReadReplaceDelete()
    {
        var email = NewEmail();
        var externalId = $"ext-{Guid.NewGuid():N}";

        var created = await ScimAsync(HttpMethod.Post, "/scim/v2/Users", new
        {
            schemas = new[] { UserSchema }, externalId, userName = email, password = Password,
            name = new { givenName = "Jane", familyName = "Doe" }, displayName = "Jane D.", active = true,
            emails = new[] { new { value = email, type = "work", primary = true } },
        });
        var body = Ok(created, HttpStatusCode.Created);
        var id = Id(body);
        var read = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));
        var token = await LoginAsync(email);
        var replaced = Ok(await ScimAsync(HttpMethod.Put, $"/scim/v2/Users/{id}", new
        {
            schemas = new[] { UserSchema }, userName = email, displayName = "Replaced Name", active = true,
        }));
        var readAfterReplace = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));
        var deleted = await ScimAsync(HttpMethod.Delete, $"/scim/v2/Users/{id}");

        var location = body.GetProperty("meta").GetProperty("location").GetString()!;
        Assert.Equal(location, created.Response.Headers.Location!.ToString());
        Assert.EndsWith($"/scim/v2/Users/{id}", location);
        Assert.Equal("User", body.GetProperty("meta").GetProperty("resourceType").GetString());
        Assert.True(body.GetProperty("meta").TryGetProperty("created", out _));
        Assert.Contains(UserSchema, Strings(body.GetProperty("schemas")));
        Assert.False(body.TryGetProperty("password", out _));
        foreach (var user in new[] { body, read })
        {
            Assert.Equal(id, Id(user));
            Assert.Equal(email, user.GetProperty("userName").GetString());
            Assert.Equal(externalId, user.GetProperty("externalId").GetString());
            Assert.Equal("Jane D.", user.GetProperty("displayName").GetString());
            Assert.Equal("Jane", user.GetProperty("name").GetProperty("givenName").GetString());
            Assert.Equal("Doe", user.GetProperty("name").GetProperty("familyName").GetString());
            Assert.True(user.GetProperty("active").GetBoolean());
            Assert.Equal(email, user.GetProperty("emails")[0].GetProperty("value").GetString());
        }
        // PUT replaces: what it leaves out is cleared.
        Assert.Equal("Replaced Name", replaced.GetProperty("displayName").GetString());
        Assert.False(Has(replaced, "externalId"));
        Assert.False(replaced.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.Object && Has(name, "givenName"));
        Assert.False(Has(readAfterReplace, "externalId"));
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Null(ScimError(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"), HttpStatusCode.NotFound));
        ScimError(await ScimAsync(HttpMethod.Delete, $"/scim/v2/Users/{id}"), HttpStatusCode.NotFound);
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(email));
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallApiAsync(token)).StatusCode);
    }

    [Fact]
    public async Task Users_CreatedWithPassword_IsAVerifiedAccountThatSignsIn_NamedFromItsParts()
    {
        var email = NewEmail();

        var created = await CreateScimUserAsync(email, password: Password, givenName: "Ada", familyName: "Lovelace");
        var token = await LoginAsync(email);
        var me = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", token);

        Assert.Equal("Ada Lovelace", created.GetProperty("displayName").GetString());
        Assert.Equal("Ada Lovelace", created.GetProperty("name").GetProperty("formatted").GetString());
        Assert.Equal(HttpStatusCode.OK, me.Status);
        Assert.Equal(email, me.Body.GetProperty("user").GetProperty("email").GetString());
        Assert.True(me.Body.GetProperty("user").GetProperty("email_verified").GetBoolean());
    }

    /// <summary>
    /// A self-registered first member of an organization becomes its org_admin; an account a directory provisions does
    /// not, whichever it happens to send first: the directory manages the organization.
    /// </summary>
    [Fact]
    public async Task Users_FirstProvisionedMemberOfAnOrganization_IsNotMadeItsAdmin()
    {
        var email = $"first-{Guid.NewGuid():N}@scim-{Guid.NewGuid():N}.example";

        await CreateScimUserAsync(email, password: Password);
        var me = await ApiAsync(HttpMethod.Get, "/api/v1/auth/me", await LoginAsync(email));

        var user = me.Body.GetProperty("user");
        Assert.Equal(["user"], user.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(email.Split('@')[1], user.GetProperty("organization").GetProperty("domain").GetString());
    }

    [Fact]
    public async Task Users_CreatedInactive_CannotSignIn()
    {
        var email = NewEmail();

        var created = await CreateScimUserAsync(email, password: Password, active: false);
        var read = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{Id(created)}"));

        Assert.False(created.GetProperty("active").GetBoolean());
        Assert.False(read.GetProperty("active").GetBoolean());
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(email));
    }

    [Fact]
    public async Task Users_AcceptPlainApplicationJson()
    {
        var email = NewEmail();

        var created = await SendAsync(HttpMethod.Post, "/scim/v2/Users", await ScimTokenAsync(),
            $$"""{"schemas":["{{UserSchema}}"],"userName":"{{email}}"}""", "application/json");
        var id = Id(Ok(created, HttpStatusCode.Created));
        var patched = await SendAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", await ScimTokenAsync(),
            Patch("""{"op":"replace","path":"displayName","value":"Plain Json"}"""), "application/json");

        Assert.Equal("Plain Json", Ok(patched).GetProperty("displayName").GetString());
    }

    [Fact]
    public async Task Users_AttributeNamesAreCaseInsensitive()
    {
        var email = NewEmail();

        var created = Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Users",
            $$"""{"schemas":["{{UserSchema}}"],"UserName":"{{email}}","DISPLAYNAME":"Loud Name","externalID":"loud-{{email}}"}"""), HttpStatusCode.Created);

        Assert.Equal(email, created.GetProperty("userName").GetString());
        Assert.Equal("Loud Name", created.GetProperty("displayName").GetString());
        Assert.Equal($"loud-{email}", created.GetProperty("externalId").GetString());
    }

    [Theory]
    [InlineData("""{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"displayName":"No User Name"}""", "invalidValue")]
    [InlineData("""{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"not-an-email"}""", "invalidValue")]
    [InlineData("""{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{email}","password":"short"}""", "invalidValue")]
    [InlineData("""{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":""", "invalidSyntax")]
    [InlineData("""this is not json""", "invalidSyntax")]
    public async Task Users_CreateInvalid_Is400(string json, string scimType)
    {
        var email = NewEmail();

        var answer = await ScimAsync(HttpMethod.Post, "/scim/v2/Users", json.Replace("{email}", email));

        Assert.Equal(scimType, ScimError(answer, HttpStatusCode.BadRequest));
        Assert.Empty(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q($"userName eq \"{email}\"")}"))));
    }

    [Fact]
    public async Task Users_DuplicateUserName_IgnoringCase_Is409_AndNothingChanges()
    {
        var email = NewEmail();
        var first = await CreateScimUserAsync(email, password: Password, displayName: "First", externalId: "first");

        var duplicate = await ScimAsync(HttpMethod.Post, "/scim/v2/Users", new
        {
            schemas = new[] { UserSchema }, userName = email.ToUpperInvariant(), displayName = "Second", externalId = "second",
            password = "another long enough passphrase",
        });

        Assert.Equal("uniqueness", ScimError(duplicate, HttpStatusCode.Conflict));
        var stored = Assert.Single(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q($"userName eq \"{email}\"")}"))));
        Assert.Equal(Id(first), Id(stored));
        Assert.Equal("First", stored.GetProperty("displayName").GetString());
        Assert.Equal("first", stored.GetProperty("externalId").GetString());
        Assert.Equal(HttpStatusCode.OK, await LoginStatusAsync(email));
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(email, "another long enough passphrase"));
    }

    [Fact]
    public async Task Users_UnknownId_Is404()
    {
        var unknown = Guid.NewGuid().ToString();

        var get = await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{unknown}");
        var patch = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{unknown}", Patch("""{"op":"replace","path":"active","value":false}"""));

        Assert.Null(ScimError(get, HttpStatusCode.NotFound));
        ScimError(patch, HttpStatusCode.NotFound);
    }

    /// <summary>
    /// Three users of one tag: a (alice, active, externalId ext-tag-a), b (bob, inactive, externalId ext-tag-b),
    /// c (carol at other.test, active, no externalId). The expected letters are the users the filter finds.
    /// </summary>
    [Theory]
    [InlineData("userName eq \"{A}\"", "a")]
    [InlineData("UserName eq \"{a}\"", "a")]
    [InlineData("externalId eq \"ext-{tag}-a\"", "a")]
    [InlineData("externalId eq \"EXT-{tag}-A\"", "")]
    [InlineData("id eq \"{idA}\"", "a")]
    [InlineData("displayName co \"ob {tag}\"", "b")]
    [InlineData("userName sw \"{tag}-c\"", "c")]
    [InlineData("userName sw \"{tag}\" and userName ew \"@other.test\"", "c")]
    [InlineData("userName sw \"{tag}\" and userName ne \"{a}\"", "bc")]
    [InlineData("userName sw \"{tag}\" and externalId pr", "ab")]
    [InlineData("userName sw \"{tag}\" and active eq false", "b")]
    [InlineData("emails.value eq \"{b}\"", "b")]
    [InlineData("emails[value eq \"{c}\"]", "c")]
    [InlineData("userName eq \"{a}\" or userName eq \"{b}\"", "ab")]
    [InlineData("userName sw \"{tag}\" and not (active eq false)", "ac")]
    [InlineData("(userName eq \"{a}\" or userName eq \"{b}\") and active eq true", "a")]
    [InlineData("userName sw \"{tag}\" and meta.created gt \"{past}\"", "abc")]
    [InlineData("userName sw \"{tag}\" and meta.created gt \"{future}\"", "")]
    public async Task Users_Filter(string filter, string expected)
    {
        var tag = Guid.NewGuid().ToString("N")[..12];
        string a = $"{tag}-alice@example.test", b = $"{tag}-bob@example.test", c = $"{tag}-carol@other.test";
        var ids = new Dictionary<string, string>
        {
            [Id(await CreateScimUserAsync(a, externalId: $"ext-{tag}-a", displayName: $"Alice {tag}"))] = "a",
            [Id(await CreateScimUserAsync(b, externalId: $"ext-{tag}-b", displayName: $"Bob {tag}", active: false))] = "b",
            [Id(await CreateScimUserAsync(c, displayName: $"Carol {tag}"))] = "c",
        };
        var resolved = filter.Replace("{tag}", tag).Replace("{A}", a.ToUpperInvariant()).Replace("{a}", a).Replace("{b}", b).Replace("{c}", c)
            .Replace("{idA}", ids.Single(p => p.Value == "a").Key)
            .Replace("{past}", DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-ddTHH:mm:ssZ"))
            .Replace("{future}", DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm:ssZ"));

        var list = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q(resolved)}"));

        var found = Resources(list).Select(r => ids.TryGetValue(Id(r), out var letter) ? letter : $"?{Id(r)}").Order();
        Assert.Equal(expected, string.Concat(found));
        Assert.Equal(expected.Length, list.GetProperty("totalResults").GetInt32());
    }

    [Theory]
    [InlineData("userName eq")]
    [InlineData("userName xx \"a\"")]
    [InlineData("foo eq \"a\"")]
    [InlineData("userName eq \"a\" and")]
    [InlineData("(userName eq \"a\"")]
    public async Task Users_BadFilter_Is400InvalidFilter(string filter)
    {
        var answer = await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q(filter)}");

        Assert.Equal("invalidFilter", ScimError(answer, HttpStatusCode.BadRequest));
    }

    [Fact]
    public async Task Users_Paginate_OneBased_StableByCreation()
    {
        var tag = $"page-{Guid.NewGuid():N}"[..17];
        var created = new List<string>();
        for (var i = 0; i < 5; i++)
            created.Add(Id(await CreateScimUserAsync($"{tag}-{i}@example.test")));
        var filter = Q($"userName sw \"{tag}\"");

        var all = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}"));
        var second = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}&startIndex=2&count=2"));
        var last = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}&startIndex=5&count=2"));
        var none = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}&count=0"));
        var many = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}&count=100000"));

        Assert.Equal(5, all.GetProperty("totalResults").GetInt32());
        Assert.Equal(1, all.GetProperty("startIndex").GetInt32());
        Assert.Equal(5, all.GetProperty("itemsPerPage").GetInt32());
        Assert.Equal(created, Resources(all).Select(Id));
        Assert.Equal(5, second.GetProperty("totalResults").GetInt32());
        Assert.Equal(2, second.GetProperty("startIndex").GetInt32());
        Assert.Equal(2, second.GetProperty("itemsPerPage").GetInt32());
        Assert.Equal(created.Skip(1).Take(2), Resources(second).Select(Id));
        Assert.Equal(new[] { created[4] }, Resources(last).Select(Id));
        Assert.Equal(5, none.GetProperty("totalResults").GetInt32());
        Assert.Empty(Resources(none));
        Assert.Equal(created, Resources(many).Select(Id));
    }

    /// <summary>
    /// RFC 7644 §3.4.2.3. Four users of one tag, created a to d: displayName "beta", "Alpha", "gamma" and none. Strings
    /// sort ignoring case; a user without the attribute comes last ascending and first descending; pages follow the sort.
    /// </summary>
    [Theory]
    [InlineData("sortBy=displayName", "bacd")]
    [InlineData("sortBy=displayName&sortOrder=ascending", "bacd")]
    [InlineData("sortBy=DISPLAYNAME&sortOrder=Descending", "dcab")]
    [InlineData("sortBy=urn:ietf:params:scim:schemas:core:2.0:User:displayName&startIndex=2&count=2", "ac")]
    [InlineData("sortBy=userName&sortOrder=descending", "dcba")]
    [InlineData("sortBy=meta.created&sortOrder=descending", "dcba")]
    [InlineData("sortBy=emails", "abcd")]
    [InlineData("sortOrder=descending", "abcd")]
    public async Task Users_Sort(string parameters, string expected)
    {
        var tag = $"sort-{Guid.NewGuid():N}"[..17];
        var ids = new Dictionary<string, string>();
        foreach (var (letter, name) in new[] { ("a", $"beta {tag}"), ("b", $"Alpha {tag}"), ("c", $"gamma {tag}"), ("d", null) })
            ids[Id(await CreateScimUserAsync($"{tag}-{letter}@example.test", displayName: name))] = letter;

        var list = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q($"userName sw \"{tag}\"")}&{parameters}"));

        Assert.Equal(expected, string.Concat(Resources(list).Select(r => ids[Id(r)])));
        Assert.Equal(4, list.GetProperty("totalResults").GetInt32());
    }

    /// <summary>
    /// RFC 7644 §3.14: a user's version changes with whatever a client can read of it (its groups too), a read of an
    /// unchanged version is 304, and a change or delete made from a version that is no longer current is 412 and
    /// changes nothing.
    /// </summary>
    [Fact]
    public async Task Users_Versions_AChangeFromAStaleVersionIs412_AndChangesNothing()
    {
        var created = await CreateScimUserAsync(NewEmail(), displayName: "First");
        var path = $"/scim/v2/Users/{Id(created)}";
        var first = Version(created);

        var read = await ScimAsync(HttpMethod.Get, path);
        var unchanged = await ScimAsync(HttpMethod.Get, path, null, ("If-None-Match", first));
        var patched = Ok(await ScimAsync(HttpMethod.Patch, path, Patch("""{"op":"replace","path":"displayName","value":"Second"}"""), ("If-Match", first)));
        var second = Version(patched);
        var stalePatch = await ScimAsync(HttpMethod.Patch, path, Patch("""{"op":"replace","path":"displayName","value":"Third"}"""), ("If-Match", first));
        var stalePut = await ScimAsync(HttpMethod.Put, path, new { schemas = new[] { UserSchema }, userName = created.GetProperty("userName").GetString() },
            ("If-Match", first));
        var staleDelete = await ScimAsync(HttpMethod.Delete, path, null, ("If-Match", first));
        var changedSince = await ScimAsync(HttpMethod.Get, path, null, ("If-None-Match", first));

        Assert.Equal(first, Version(Ok(read)));
        Assert.Equal(first, read.Response.Headers.ETag?.ToString());
        var cut = await ScimAsync(HttpMethod.Get, $"{path}?attributes=userName");
        Assert.False(Ok(cut).TryGetProperty("meta", out _));
        Assert.Equal(second, cut.Response.Headers.ETag?.ToString()); // read after the PATCH above
        Assert.StartsWith("W/\"", first);
        Assert.Equal(HttpStatusCode.NotModified, unchanged.Status);
        Assert.Equal(first, unchanged.Response.Headers.ETag?.ToString());
        Assert.NotEqual(first, second);
        Assert.Equal(second, Version(Ok(changedSince)));
        Assert.Null(ScimError(stalePatch, HttpStatusCode.PreconditionFailed));
        Assert.Null(ScimError(stalePut, HttpStatusCode.PreconditionFailed));
        Assert.Null(ScimError(staleDelete, HttpStatusCode.PreconditionFailed));
        Assert.Equal("Second", Ok(await ScimAsync(HttpMethod.Get, path)).GetProperty("displayName").GetString());

        // Joining a group changes what a client reads of the user, so its version.
        Ok(await ScimAsync(HttpMethod.Post, "/scim/v2/Groups", new
        {
            schemas = new[] { GroupSchema }, displayName = $"versioned-{Guid.NewGuid():N}", members = new[] { new { value = Id(created) } },
        }), HttpStatusCode.Created);
        var member = Ok(await ScimAsync(HttpMethod.Get, path));
        Assert.NotEqual(second, Version(member));
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await ScimAsync(HttpMethod.Delete, path, null, ("If-Match", second))).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await ScimAsync(HttpMethod.Delete, path, null, ("If-Match", $"\"{Version(member)[3..^1]}\", W/\"other\""))).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await ScimAsync(HttpMethod.Get, path)).Status);
    }

    [Theory]
    [InlineData("sortBy=emails.type")]
    [InlineData("sortBy=emails.primary&sortOrder=descending")]
    [InlineData("sortBy=id&sortOrder=ascending")]
    public async Task Users_SortByAnAttributeAllShare_GoesById(string parameters)
    {
        var tag = $"sort-{Guid.NewGuid():N}"[..17];
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
            ids.Add(Id(await CreateScimUserAsync($"{tag}-{i}@example.test")));

        var list = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={Q($"userName sw \"{tag}\"")}&{parameters}"));

        Assert.Equal(ids.Order(StringComparer.Ordinal), Resources(list).Select(Id));
    }

    [Theory]
    [InlineData("sortBy=nickName")]
    [InlineData("sortBy=groups")]
    [InlineData("sortBy=userName&sortOrder=sideways")]
    public async Task Users_SortByWhatCannotBeSorted_Is400InvalidValue(string parameters)
    {
        var answer = await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?{parameters}");

        Assert.Equal("invalidValue", ScimError(answer, HttpStatusCode.BadRequest));
    }

    [Fact]
    public async Task Users_AttributesAndExcludedAttributes()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, displayName: "Projected", givenName: "Pro", familyName: "Jected"));
        var group = Id(await CreateScimGroupAsync($"projection-{Guid.NewGuid():N}", id));
        var filter = Q($"userName eq \"{email}\"");

        var full = Assert.Single(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}"))));
        var onlyUserName = Assert.Single(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}&attributes=userName"))));
        var withoutGroups = Assert.Single(Resources(Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users?filter={filter}&excludedAttributes=groups"))));

        Assert.Contains(full.GetProperty("groups").EnumerateArray(), g => g.GetProperty("value").GetString() == group);
        Assert.Equal(id, Id(onlyUserName));
        Assert.Equal(email, onlyUserName.GetProperty("userName").GetString());
        foreach (var omitted in new[] { "displayName", "name", "emails", "active", "groups" })
            Assert.False(onlyUserName.TryGetProperty(omitted, out _), $"{omitted} was returned with attributes=userName");
        Assert.False(withoutGroups.TryGetProperty("groups", out _));
        Assert.Equal(email, withoutGroups.GetProperty("userName").GetString());
        Assert.Equal("Projected", withoutGroups.GetProperty("displayName").GetString());
    }

    /// <summary>Microsoft Entra ID sends capitalised ops, a path per attribute and booleans as strings.</summary>
    [Fact]
    public async Task Users_Patch_EntraStyle()
    {
        var email = NewEmail();
        var renamed = NewEmail("renamed");
        var id = Id(await CreateScimUserAsync(email, password: Password));

        var patched = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(
            """{"op":"Replace","path":"displayName","value":"Entra Name"}""",
            """{"op":"Replace","path":"name.givenName","value":"Given"}""",
            """{"op":"Replace","path":"name.familyName","value":"Family"}""",
            """{"op":"Replace","path":"name.formatted","value":"Given Family"}""",
            """{"op":"Add","path":"externalId","value":"entra-object-id"}""",
            $$"""{"op":"Replace","path":"userName","value":"{{renamed}}"}""",
            $$"""{"op":"Replace","path":"emails[type eq \"work\"].value","value":"{{renamed}}"}""",
            """{"op":"Replace","path":"active","value":"False"}""")));
        var read = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));
        var deactivatedLogin = await LoginStatusAsync(renamed);
        var reactivated = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch("""{"op":"Replace","path":"active","value":"True"}""")));

        foreach (var user in new[] { patched, read })
        {
            Assert.Equal("Entra Name", user.GetProperty("displayName").GetString());
            Assert.Equal("Given", user.GetProperty("name").GetProperty("givenName").GetString());
            Assert.Equal("Family", user.GetProperty("name").GetProperty("familyName").GetString());
            Assert.Equal("Given Family", user.GetProperty("name").GetProperty("formatted").GetString());
            Assert.Equal("entra-object-id", user.GetProperty("externalId").GetString());
            Assert.Equal(renamed, user.GetProperty("userName").GetString());
            Assert.Contains(renamed, user.GetProperty("emails").EnumerateArray().Select(e => e.GetProperty("value").GetString()));
            Assert.False(user.GetProperty("active").GetBoolean());
        }
        Assert.NotEqual(HttpStatusCode.OK, deactivatedLogin);
        Assert.True(reactivated.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, await LoginStatusAsync(renamed));
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(email));
    }

    /// <summary>Okta sends lower-case ops without a path, the attributes in an object value.</summary>
    [Fact]
    public async Task Users_Patch_OktaStyle()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, password: Password, displayName: "Before"));

        var deactivated = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch("""{"op":"replace","value":{"active":false}}""")));
        var loginWhileInactive = await LoginStatusAsync(email);
        var reactivated = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}",
            Patch("""{"op":"replace","value":{"active":true,"displayName":"After","externalId":"okta-00u1"}}""")));

        Assert.False(deactivated.GetProperty("active").GetBoolean());
        Assert.Equal("Before", deactivated.GetProperty("displayName").GetString());
        Assert.NotEqual(HttpStatusCode.OK, loginWhileInactive);
        Assert.True(reactivated.GetProperty("active").GetBoolean());
        Assert.Equal("After", reactivated.GetProperty("displayName").GetString());
        Assert.Equal("okta-00u1", reactivated.GetProperty("externalId").GetString());
        Assert.Equal(HttpStatusCode.OK, await LoginStatusAsync(email));
    }

    [Fact]
    public async Task Users_Patch_UnknownAttributesAreIgnored()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, displayName: "Unchanged"));

        var patched = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch(
            """{"op":"Add","path":"title","value":"Engineer"}""",
            """{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"R&D"}""",
            """{"op":"replace","value":{"nickName":"Nick","displayName":"Changed"}}"""));

        var user = Ok(patched);
        Assert.Equal("Changed", user.GetProperty("displayName").GetString());
        Assert.Equal(email, user.GetProperty("userName").GetString());
        Assert.True(user.GetProperty("active").GetBoolean());
    }

    [Theory]
    [InlineData("""{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"explode","path":"active","value":false}]}""", null)]
    [InlineData("""{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}""", "invalidSyntax")]
    [InlineData("""{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"userName"}]}""", null)]
    [InlineData("""{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[""", "invalidSyntax")]
    public async Task Users_Patch_Invalid_Is400_AndChangesNothing(string json, string? scimType)
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email));

        var answer = await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", json);

        var type = ScimError(answer, HttpStatusCode.BadRequest);
        if (scimType is not null)
            Assert.Equal(scimType, type);
        var user = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));
        Assert.Equal(email, user.GetProperty("userName").GetString());
        Assert.True(user.GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Users_Deactivated_CannotSignIn_TokensAndRefreshRefused_ReactivationRestores()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, password: Password));
        var login = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });
        Assert.Equal(HttpStatusCode.OK, login.Status);
        var grant = await PasswordGrantAsync(email);
        Assert.False(grant.IsError, grant.Error);

        var deactivated = Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch("""{"op":"Replace","path":"active","value":"False"}""")));
        var me = await CallApiAsync(login.Body.GetProperty("access_token").GetString()!);
        var refresh = await ApiAsync(HttpMethod.Post, "/api/v1/auth/refresh", body: new { refresh_token = login.Body.GetProperty("refresh_token").GetString() });
        var oidcRefresh = await RefreshAsync(grant.RefreshToken!);
        var passwordGrant = await PasswordGrantAsync(email);
        var loginWhileInactive = await LoginStatusAsync(email);
        var read = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));
        Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch("""{"op":"replace","path":"active","value":true}""")));

        Assert.False(deactivated.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, refresh.Status);
        Assert.True(oidcRefresh.IsError);
        Assert.True(passwordGrant.IsError);
        Assert.NotEqual(HttpStatusCode.OK, loginWhileInactive);
        Assert.False(read.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, await LoginStatusAsync(email));
    }

    /// <summary>Wrong passwords lock an account for 15 minutes; on a deactivated account they must not replace the deactivation with that.</summary>
    [Fact]
    public async Task Users_Deactivated_WrongPasswordsDoNotLiftIt_AndTheRightOneIsToldItIsDisabled()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, password: Password, active: false));

        foreach (var _ in Enumerable.Range(0, 6))
            await LoginStatusAsync(email, "not the password at all");
        var read = Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}"));
        var right = await ApiAsync(HttpMethod.Post, "/api/v1/auth/login", body: new { email, password = Password });

        Assert.False(read.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.Forbidden, right.Status);
        Assert.Equal("account_disabled", right.Body.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Users_PutActiveFalse_Deactivates()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, password: Password));
        var token = await LoginAsync(email);

        var replaced = Ok(await ScimAsync(HttpMethod.Put, $"/scim/v2/Users/{id}", new
        {
            schemas = new[] { UserSchema }, userName = email, active = false,
            emails = new[] { new { value = email, type = "work", primary = true } },
        }));

        Assert.False(replaced.GetProperty("active").GetBoolean());
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(email));
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallApiAsync(token)).StatusCode);
    }

    [Fact]
    public async Task Users_PutWithoutUserName_Is400()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email, displayName: "Kept"));

        var answer = await ScimAsync(HttpMethod.Put, $"/scim/v2/Users/{id}", new { schemas = new[] { UserSchema }, displayName = "Lost" });

        ScimError(answer, HttpStatusCode.BadRequest);
        Assert.Equal("Kept", Ok(await ScimAsync(HttpMethod.Get, $"/scim/v2/Users/{id}")).GetProperty("displayName").GetString());
    }

    [Fact]
    public async Task Users_ChangesAreAudited()
    {
        var email = NewEmail();
        var id = Id(await CreateScimUserAsync(email));
        Ok(await ScimAsync(HttpMethod.Patch, $"/scim/v2/Users/{id}", Patch("""{"op":"Replace","path":"active","value":"False"}""")));
        var admin = await AdminAsync();

        var created = await AuditAsync(admin, $"user_id={id}&action=user.created");
        var updated = await AuditAsync(admin, $"user_id={id}&action=user.updated");

        Assert.Single(created);
        Assert.NotEmpty(updated);
        Assert.All(created.Concat(updated), e => Assert.Equal(id, e.GetProperty("subject").GetString()));
    }
}
