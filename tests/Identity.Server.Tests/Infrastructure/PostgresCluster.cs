using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Identity.Server.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL cluster for this test run when none is given: initdb into a temporary folder, started on a free
/// loopback port, stopped when the test process exits. Needs the PostgreSQL server binaries (Debian: postgresql).
/// </summary>
sealed class PostgresCluster
{
    static readonly Lazy<PostgresCluster> Instance = new(() => new PostgresCluster());
    public static PostgresCluster Shared => Instance.Value;

    public string ConnectionString { get; }

    PostgresCluster()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl"))).Order().LastOrDefault()
            : null;
        if (bin is null)
            throw new InvalidOperationException("PostgreSQL tests need IDENTITY_TEST_POSTGRES or the PostgreSQL server binaries (apt-get install postgresql).");

        var data = Directory.CreateTempSubdirectory("identity-pg-").FullName;
        var port = FreePort();
        // initdb refuses to run as root: run the cluster as the postgres user then.
        var asRoot = Environment.UserName == "root";
        if (asRoot)
            Run("chown", $"postgres {data}");
        Run(bin + "/initdb", $"-D {data} -U postgres -A trust --no-sync", asRoot);
        Run(bin + "/pg_ctl", $"-D {data} -o \"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off\" -w -l {data}/log start", asRoot);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Run(bin + "/pg_ctl", $"-D {data} -m immediate stop", asRoot);
        ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres";
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    static void Run(string file, string arguments, bool asPostgres = false)
    {
        var start = asPostgres
            ? new ProcessStartInfo("runuser", $"-u postgres -- {file} {arguments}")
            : new ProcessStartInfo(file, arguments);
        start.RedirectStandardOutput = start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {arguments} failed ({process.ExitCode}): {error} {output.Result}");
    }
}
