using System.Diagnostics;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// Second opinions from node (tests/Identity.Server.Tests/tools/NAME): a script run with node, its packages installed
/// with npm on first use (CI installs them beforehand). Its standard output is the answer.
/// </summary>
public static class NodeTools
{
    public static string Run(string tool, string script, string? input = null, IDictionary<string, string>? environment = null)
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "tools", tool);
        lock (typeof(NodeTools))
            if (!Directory.Exists(Path.Combine(directory, "node_modules")))
                Start("npm", "install --no-audit --no-fund --silent", directory, null, null);
        return Start("node", script, directory, input, environment);
    }

    static string Start(string file, string arguments, string directory, string? input, IDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = directory, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        if (input is not null)
            process.StandardInput.Write(input);
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {arguments}: {error.Result}");
        return output;
    }
}
