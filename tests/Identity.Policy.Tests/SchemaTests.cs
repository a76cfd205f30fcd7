using System.Text.Json;
using Identity.Policy.Evaluation;
using Identity.Policy.Extensions;
using Identity.Policy.Schema;
using Identity.Policy.Validation;
using Identity.Policy.Values;
using static Identity.Policy.Tests.TestSupport;

namespace Identity.Policy.Tests;

public sealed class SchemaTests
{
    private const string CedarText = """
        namespace App {
          type Limits = { max: decimal, window?: duration };
          entity Group;
          entity User in [Group] = { name: String, manager?: User, limits: Limits };
          entity Doc tags String;
          action read;
          action view in [read] appliesTo { principal: [User], resource: [Doc], context: { amount: decimal, ip?: ipaddr } };
        }
        """;

    private const string JsonText = """
        {"App": {
          "commonTypes": {"Limits": {"type": "Record", "attributes": {
            "max": {"type": "Extension", "name": "decimal"},
            "window": {"type": "Extension", "name": "duration", "required": false}}}},
          "entityTypes": {
            "Group": {},
            "User": {"memberOfTypes": ["Group"], "shape": {"type": "Record", "attributes": {
              "name": {"type": "String"}, "manager": {"type": "Entity", "name": "User", "required": false},
              "limits": {"type": "Limits"}}}},
            "Doc": {"tags": {"type": "String"}}},
          "actions": {
            "read": {},
            "view": {"memberOf": [{"id": "read"}], "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Doc"],
              "context": {"type": "Record", "attributes": {"amount": {"type": "Extension", "name": "decimal"},
                "ip": {"type": "Extension", "name": "ipaddr", "required": false}}}}}}}}
        """;

    private static readonly EntityUid View = Uid("App::Action", "view");

    public static TheoryData<string> Schemas() => new() { "cedar", "json" };

    private static CedarSchema Load(string kind) =>
        kind == "cedar" ? CedarSchema.Parse(CedarText) : CedarSchema.FromJson(JsonDocument.Parse(JsonText).RootElement);

    [Theory]
    [MemberData(nameof(Schemas))]
    public void Both_syntaxes_declare_the_same_types_and_actions(string kind)
    {
        var schema = Load(kind);
        Assert.Equal(["App::Doc", "App::Group", "App::User"], schema.EntityTypes.Keys.Order());
        Assert.True(schema.EntityTypeMayBeIn("App::User", "App::Group"));
        var view = schema.Actions[View];
        Assert.Contains(Uid("App::Action", "read"), view.Ancestors);
        Assert.Equal(["App::User"], view.Principals);
        var limits = (RecordSchemaType)schema.EntityTypes["App::User"].Attributes.Attributes["limits"].Type;
        Assert.False(limits.Attributes["window"].Required);
    }

    [Theory]
    [MemberData(nameof(Schemas))]
    public void Context_and_attributes_are_read_at_their_schema_types(string kind)
    {
        var schema = Load(kind);
        var context = Context("""{"amount": "0.6", "ip": "10.0.0.1"}""", schema, View);
        Assert.IsType<DecimalValue>(context.Attributes["amount"]);
        Assert.IsType<IpValue>(context.Attributes["ip"]);

        var entities = LoadEntities("""
            [{"uid": {"type": "App::User", "id": "a"}, "parents": [],
              "attrs": {"name": "A", "manager": {"type": "App::User", "id": "b"}, "limits": {"max": "10.5", "window": "1h"}}}]
            """, schema);
        Assert.True(entities.TryGet(Uid("App::User", "a"), out var user));
        Assert.IsType<EntityUid>(user.Attributes["manager"]);
        // Actions and their groups come from the schema.
        Assert.True(entities.IsDescendantOrSelf(View, Uid("App::Action", "read")));

        var request = new Request(Uid("App::User", "a"), View, Uid("App::Doc", "d"), context);
        Assert.Empty(RequestValidator.Validate(schema, request));
        var set = PolicySet.Parse("""
            permit(principal, action in App::Action::"read", resource)
            when { context.amount.lessThan(principal.limits.max) && principal.limits has window };
            """);
        Assert.Equal(Decision.Allow, Authorizer.IsAuthorized(request, entities, set).Decision);
    }

    [Fact]
    public void Requests_outside_the_schema_are_rejected()
    {
        var schema = Load("cedar");
        var wrongPrincipal = new Request(Uid("App::Doc", "x"), View, Uid("App::Doc", "d"), Context("""{"amount": "1.0"}""", schema, View));
        Assert.NotEmpty(RequestValidator.Validate(schema, wrongPrincipal));
        var missingContext = new Request(Uid("App::User", "a"), View, Uid("App::Doc", "d"), RecordValue.Empty);
        Assert.NotEmpty(RequestValidator.Validate(schema, missingContext));
    }

    [Theory]
    [InlineData("permit(principal, action == App::Action::\"view\", resource) when { principal.name == \"x\" };", true)]
    [InlineData("permit(principal, action, resource) when { principal has manager && principal.manager.name == \"x\" };", true)]
    [InlineData("permit(principal, action, resource) when { principal.manager.name == \"x\" };", false)]
    [InlineData("permit(principal, action, resource) when { principal.name == 1 };", false)]
    [InlineData("permit(principal, action, resource) when { principal.nope };", false)]
    [InlineData("permit(principal, action, resource) when { resource.hasTag(\"k\") && resource.getTag(\"k\") like \"v*\" };", true)]
    [InlineData("permit(principal, action, resource) when { resource.getTag(\"k\") == \"v\" };", false)]
    [InlineData("permit(principal, action, resource) when { [] == [] };", false)]
    [InlineData("permit(principal, action, resource) when { [1, \"a\"].contains(1) };", false)]
    [InlineData("permit(principal, action, resource) when { decimal(context.nope) };", false)]
    [InlineData("permit(principal, action, resource) when { context.amount.lessThan(decimal(\"1.0\")) };", true)]
    [InlineData("permit(principal == App::Nope::\"x\", action, resource);", false)]
    [InlineData("permit(principal, action == App::Action::\"nope\", resource);", false)]
    [InlineData("permit(principal is App::Doc, action, resource);", false)]
    [InlineData("permit(principal in App::Group::\"g\", action, resource) when { principal in resource };", true)]
    [InlineData("permit(principal, action, resource) when { 1 };", false)]
    public void Strict_validation(string policy, bool valid)
    {
        var result = PolicyValidator.Validate(Load("cedar"), PolicySet.Parse(policy));
        Assert.True(valid == result.IsValid, string.Join("; ", result.Errors));
    }

    [Fact]
    public void Schema_errors_report_line_and_column()
    {
        var ex = Assert.Throws<PolicyFormatException>(() => CedarSchema.Parse("entity User;\nentity Doc = { a: };"));
        Assert.Equal((2, 19), (ex.Line, ex.Column));
        Assert.Throws<PolicyFormatException>(() => CedarSchema.Parse("entity User in [Nope];"));
    }
}
