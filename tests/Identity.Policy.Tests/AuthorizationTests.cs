using static Identity.Policy.Tests.TestSupport;

namespace Identity.Policy.Tests;

public sealed class AuthorizationTests
{
    private static readonly Values.EntityUid Alice = Uid("User", "alice");
    private static readonly Values.EntityUid View = Uid("Action", "view");
    private static readonly Values.EntityUid Doc = Uid("Doc", "d");

    private const string UserEntities = """
        [{"uid": {"type": "User", "id": "alice"}, "attrs": {"suspended": false, "level": 3}, "parents": []},
         {"uid": {"type": "User", "id": "bob"}, "attrs": {"suspended": true, "level": 1}, "parents": []}]
        """;

    [Fact]
    public void Unless_blocks_the_permit_when_its_condition_holds()
    {
        const string policy = "permit(principal, action, resource) unless { principal.suspended };";
        var entities = LoadEntities(UserEntities);
        Assert.Equal(Decision.Allow, Authorize(policy, Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Deny, Authorize(policy, Uid("User", "bob"), View, Doc, entities).Decision);
    }

    [Fact]
    public void When_and_unless_clauses_must_all_pass()
    {
        const string policy = "permit(principal, action, resource) when { principal.level > 2 } unless { principal.suspended } when { true };";
        var entities = LoadEntities(UserEntities);
        Assert.Equal(Decision.Allow, Authorize(policy, Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Deny, Authorize(policy, Uid("User", "bob"), View, Doc, entities).Decision);
    }

    [Fact]
    public void A_satisfied_forbid_overrides_permits_and_alone_is_the_reason()
    {
        const string policies = """
            permit(principal, action, resource);
            permit(principal == User::"alice", action, resource);
            forbid(principal, action == Action::"view", resource) when { resource == Doc::"d" };
            forbid(principal, action, resource == Doc::"other");
            """;
        var result = Authorize(policies, Alice, View, Doc);
        Assert.Equal(Decision.Deny, result.Decision);
        Assert.Equal(["policy2"], result.Reasons);
    }

    [Fact]
    public void Every_satisfied_permit_is_a_reason()
    {
        const string policies = """
            permit(principal, action, resource);
            permit(principal == User::"alice", action, resource);
            permit(principal == User::"bob", action, resource);
            """;
        var result = Authorize(policies, Alice, View, Doc);
        Assert.Equal(Decision.Allow, result.Decision);
        Assert.Equal(["policy0", "policy1"], result.Reasons);
        Assert.Empty(result.Errors);
    }

    [Fact]
    public void No_satisfied_policy_means_deny_without_reasons()
    {
        var result = Authorize("permit(principal == User::\"bob\", action, resource);", Alice, View, Doc);
        Assert.Equal(Decision.Deny, result.Decision);
        Assert.Empty(result.Reasons);
    }

    [Fact]
    public void Erroring_policies_are_skipped_and_reported_by_id()
    {
        const string policies = """
            @id("broken-forbid")
            forbid(principal, action, resource) when { principal.missing };
            @id("overflow")
            permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };
            @id("ok")
            permit(principal, action, resource);
            """;
        var set = PolicySet.Parse(policies, PolicyIdMode.IdAnnotation);
        var result = Authorizer.IsAuthorized(new Evaluation.Request(Alice, View, Doc), LoadEntities(UserEntities), set);
        Assert.Equal(Decision.Allow, result.Decision);
        Assert.Equal(["ok"], result.Reasons);
        Assert.Equal(["broken-forbid", "overflow"], result.Errors.Select(e => e.PolicyId).Order());
        Assert.Contains("missing", result.Errors.Single(e => e.PolicyId == "broken-forbid").Message);
        Assert.Contains("overflow", result.Errors.Single(e => e.PolicyId == "overflow").Message);
    }

    [Fact]
    public void Deep_hierarchies_are_followed_transitively()
    {
        // alice -> g0 -> g1 -> ... -> g19, plus a cycle back to g0 which must not loop forever.
        var groups = Enumerable.Range(0, 20).Select(i =>
            $$"""{"uid": {"type": "Group", "id": "g{{i}}"}, "attrs": {}, "parents": [{"type": "Group", "id": "g{{(i + 1) % 20}}"}]}""");
        var json = "[" + string.Join(",", groups) + """
            ,{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "g0"}]}]
            """;
        var entities = LoadEntities(json);
        Assert.Equal(Decision.Allow, Authorize("permit(principal in Group::\"g19\", action, resource);", Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Allow, Authorize("permit(principal, action, resource) when { principal in [Group::\"nope\", Group::\"g7\"] };", Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Allow, Authorize("permit(principal is User in Group::\"g3\", action, resource);", Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Deny, Authorize("permit(principal in Group::\"other\", action, resource);", Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Deny, Authorize("permit(principal is Group in Group::\"g3\", action, resource);", Alice, View, Doc, entities).Decision);
    }

    [Fact]
    public void Action_lists_match_any_member_or_group()
    {
        var entities = LoadEntities("""[{"uid": {"type": "Action", "id": "view"}, "attrs": {}, "parents": [{"type": "Action", "id": "read"}]}]""");
        Assert.Equal(Decision.Allow, Authorize("permit(principal, action in [Action::\"write\", Action::\"read\"], resource);", Alice, View, Doc, entities).Decision);
        Assert.Equal(Decision.Deny, Authorize("permit(principal, action in [Action::\"write\"], resource);", Alice, View, Doc, entities).Decision);
    }

    [Fact]
    public void Templates_take_part_only_once_linked()
    {
        var set = PolicySet.Parse("""
            @id("viewers")
            permit(principal == ?principal, action == Action::"view", resource in ?resource);
            """, PolicyIdMode.IdAnnotation);
        var folder = Uid("Folder", "f");
        var entities = LoadEntities("""[{"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": [{"type": "Folder", "id": "f"}]}]""");
        var request = new Evaluation.Request(Alice, View, Doc);
        Assert.Equal(Decision.Deny, Authorizer.IsAuthorized(request, entities, set).Decision);

        set.Link("viewers", "alice-f", new Dictionary<Ast.SlotKind, Values.EntityUid> { [Ast.SlotKind.Principal] = Alice, [Ast.SlotKind.Resource] = folder });
        set.Link("viewers", "bob-f", new Dictionary<Ast.SlotKind, Values.EntityUid> { [Ast.SlotKind.Principal] = Uid("User", "bob"), [Ast.SlotKind.Resource] = folder });
        var result = Authorizer.IsAuthorized(request, entities, set);
        Assert.Equal(Decision.Allow, result.Decision);
        Assert.Equal(["alice-f"], result.Reasons);
    }

    [Fact]
    public void Linking_requires_every_slot_and_a_unique_id()
    {
        var set = PolicySet.Parse("permit(principal in ?principal, action, resource == ?resource);");
        var onlyPrincipal = new Dictionary<Ast.SlotKind, Values.EntityUid> { [Ast.SlotKind.Principal] = Alice };
        Assert.Throws<PolicyFormatException>(() => set.Link("policy0", "l", onlyPrincipal));
        var both = new Dictionary<Ast.SlotKind, Values.EntityUid> { [Ast.SlotKind.Principal] = Alice, [Ast.SlotKind.Resource] = Doc };
        set.Link("policy0", "l1", both);
        Assert.Throws<PolicyFormatException>(() => set.Link("policy0", "l1", both));
        Assert.Throws<PolicyFormatException>(() => set.Link("nope", "l2", both));
    }

    [Fact]
    public void Entity_tags_are_read_with_hasTag_and_getTag()
    {
        var entities = LoadEntities("""[{"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": [], "tags": {"owner": "alice"}}]""");
        const string policy = """permit(principal, action, resource) when { resource.hasTag("owner") && resource.getTag("owner") == "alice" };""";
        Assert.Equal(Decision.Allow, Authorize(policy, Alice, View, Doc, entities).Decision);
        var missing = Authorize("permit(principal, action, resource) when { resource.getTag(\"nope\") == 1 };", Alice, View, Doc, entities);
        Assert.Equal("policy0", Assert.Single(missing.Errors).PolicyId);
    }
}
