using Identity.Policy.Ast;
using Identity.Policy.Parsing;
using Identity.Policy.Values;

namespace Identity.Policy;

/// <summary>How policies parsed from text are named.</summary>
public enum PolicyIdMode
{
    /// <summary><c>policy0</c>, <c>policy1</c>, ... in textual order (templates included in the count).</summary>
    Index,

    /// <summary>Like <see cref="Index"/>, but a policy or template with <c>@id("x")</c> is named <c>x</c>.</summary>
    IdAnnotation,
}

/// <summary>Static policies (including linked templates) and templates, by id.</summary>
public sealed class PolicySet
{
    private readonly List<CedarPolicy> _policies = [];
    private readonly Dictionary<string, CedarPolicy> _templates = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);

    /// <summary>The policies that take part in authorization: static ones and template links.</summary>
    public IReadOnlyList<CedarPolicy> Policies => _policies;

    public IReadOnlyCollection<CedarPolicy> Templates => _templates.Values;

    /// <summary>Parses policy text. Throws <see cref="PolicyFormatException"/> with line and column on bad input.</summary>
    public static PolicySet Parse(string text, PolicyIdMode idMode = PolicyIdMode.Index)
    {
        var set = new PolicySet();
        var parsed = PolicyParser.ParsePolicies(text, (index, annotations) =>
            idMode == PolicyIdMode.IdAnnotation && annotations.TryGetValue("id", out var id) ? id : "policy" + index);
        foreach (var p in parsed) set.Add(p);
        return set;
    }

    public void Add(CedarPolicy policy)
    {
        if (!_ids.Add(policy.Id)) throw new PolicyFormatException($"duplicate policy id `{policy.Id}`");
        if (policy.IsTemplate) _templates.Add(policy.Id, policy);
        else _policies.Add(policy);
    }

    /// <summary>Instantiates template <paramref name="templateId"/> as a new static policy <paramref name="newId"/>.</summary>
    public CedarPolicy Link(string templateId, string newId, IReadOnlyDictionary<SlotKind, EntityUid> values)
    {
        if (!_templates.TryGetValue(templateId, out var template))
            throw new PolicyFormatException($"no template with id `{templateId}`");
        var linked = template.Link(newId, values);
        Add(linked);
        return linked;
    }
}
