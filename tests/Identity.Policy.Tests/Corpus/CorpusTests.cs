namespace Identity.Policy.Tests.Corpus;

/// <summary>Every file of the Cedar conformance corpus, one theory case per file.</summary>
public sealed class CorpusTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        var dir = CorpusDirectory();
        if (dir is null) return data;
        foreach (var f in Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileNameWithoutExtension(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void File_conforms(string name)
    {
        var failures = CorpusCase.Run(Path.Combine(CorpusDirectory()!, name + ".json"));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Corpus_is_found()
    {
        Assert.NotNull(CorpusDirectory());
        Assert.NotEmpty(Files());
    }

    /// <summary>
    /// <c>CEDAR_CORPUS_DIR</c> if set; otherwise <c>shared/cedar/corpus</c> found by walking up from the test
    /// assembly (the repository's sibling folder <c>shared</c>, wherever the repository is cloned).
    /// </summary>
    internal static string? CorpusDirectory()
    {
        var fromEnv = Environment.GetEnvironmentVariable("CEDAR_CORPUS_DIR");
        if (!string.IsNullOrEmpty(fromEnv)) return Path.GetFullPath(fromEnv);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "cedar", "corpus");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
