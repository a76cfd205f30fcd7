#!/usr/bin/env python3
"""Side-by-side benchmark of the Identity server and the oidc-provider peer on this machine.

Builds the server in Release, starts it on 127.0.0.1 with a fresh database, starts the peer from
../shared/bench/oidc-provider, warms both up, runs each workload on both alternately (A B A B ...), and writes
benchmarks/results/<date>.md. Loopback only; every process it starts is stopped when it ends. See README.md.
"""
import argparse
import base64
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEER_SOURCE = os.path.join(os.path.dirname(REPO), "shared", "bench", "oidc-provider")
TICKS = os.sysconf("SC_CLK_TCK")

CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret-0123456789"   # the peer's client, mirrored on our side
APP_ID, APP_SECRET = "bench-app", "bench-app-secret-0123456789abcdef"
PDP_ID, PDP_SECRET = "bench-pdp", "bench-pdp-secret-0123456789abcdef"   # a service asking /v1/authorize for decisions
USER, PASSWORD = "bench@bench.test", "a long enough passphrase"
CONNECTIONS = 32
AUTHORIZE_CONNECTIONS = 8

started = []


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def run(command, **kwargs):
    subprocess.run(command, check=True, **kwargs)


def start(command, env, cwd, logfile):
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=open(logfile, "w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    started.append(process)
    return process


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process in started:
        started.remove(process)


def stop_all():
    for process in list(started):
        stop(process)


def wait_ready(url, process, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def tree(pid):
    """pid and its descendants (node's cluster workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                pass
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo.extend(children.get(current, []))
    return result


def cpu_seconds(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICKS


def rss_mb(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def post_form(url, fields, auth=None):
    return post(url, urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded", auth)


def post_json(url, body, auth=None):
    return post(url, json.dumps(body).encode(), "application/json", auth)


def post(url, data, content_type, auth):
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", content_type)
    if auth:
        request.add_header("Authorization", auth)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wrk(url, seconds, script=None, env=None, connections=CONNECTIONS):
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", os.path.join(HERE, script)]
    output = subprocess.run(command + [url], env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            check=True, timeout=seconds + 60).stdout

    def latency(percent):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency(50), "p99": latency(99), "requests": requests,
        "errors": (int(errors.group(1)) if errors else 0),
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
    }


def measure(process, url, seconds, script=None, env=None, connections=CONNECTIONS):
    """One wrk run, with the server's CPU time per request and its peak RSS during the run."""
    peak = [rss_mb(process.pid)]
    done = threading.Event()

    def sample():
        while not done.wait(0.25):
            peak[0] = max(peak[0], rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before = cpu_seconds(process.pid)
    sampler.start()
    try:
        result = wrk(url, seconds, script, env, connections)
    finally:
        done.set()
        sampler.join()
    result["cpu_us"] = (cpu_seconds(process.pid) - cpu_before) * 1e6 / max(result["requests"], 1)
    result["rss_mb"] = peak[0]
    return result


class Ours:
    name = "identity"

    def __init__(self, work, app, algorithm, postgres):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        database = os.path.join(work, f"identity-{algorithm}.db")
        env = {
            "ASPNETCORE_ENVIRONMENT": "Production",
            "ASPNETCORE_URLS": self.base,
            "Identity__Keys__Path": os.path.join(work, "keys"),
            "Identity__Keys__SigningAlgorithm": algorithm,
            "Identity__RateLimiting__Enabled": "false",
            "Logging__LogLevel__Default": "Warning",
            "Identity__Admin__Email": USER,
            "Identity__Admin__Password": PASSWORD,
            "Identity__Scopes__0__Name": "api:read",
            "Identity__Scopes__0__Resources__0": "urn:bench:api",
            "Identity__Clients__0__ClientId": CLIENT_ID,
            "Identity__Clients__0__ClientSecret": CLIENT_SECRET,
            "Identity__Clients__0__GrantTypes__0": "client_credentials",
            "Identity__Clients__0__Scopes__0": "api:read",
            "Identity__Clients__1__ClientId": APP_ID,
            "Identity__Clients__1__ClientSecret": APP_SECRET,
            "Identity__Clients__1__GrantTypes__0": "password",
            "Identity__Clients__1__GrantTypes__1": "refresh_token",
            "Identity__Clients__1__Scopes__0": "offline_access",
            "Identity__Clients__1__Scopes__1": "identity",
            "Identity__Clients__2__ClientId": PDP_ID,
            "Identity__Clients__2__ClientSecret": PDP_SECRET,
            "Identity__Clients__2__GrantTypes__0": "client_credentials",
            "Identity__Clients__2__Scopes__0": "identity",
        }
        if postgres:
            env["Identity__Database__Provider"] = "PostgreSql"
            env["ConnectionStrings__Identity"] = postgres + f";Database=identity_bench_{algorithm.lower()}"
        else:
            env["ConnectionStrings__Identity"] = f"Data Source={database}"
        self.process = start(["dotnet", os.path.join(app, "Identity.Server.dll")], env, app,
                             os.path.join(work, f"identity-{algorithm}.log"))
        wait_ready(self.base + "/health/ready", self.process)

    token_path, introspection_path, discovery_path, jwks_path = "/connect/token", "/connect/introspect", \
        "/.well-known/openid-configuration", "/.well-known/jwks"

    def refresh_tokens(self, count):
        return [post_form(self.base + self.token_path,
                          {"grant_type": "password", "username": USER, "password": PASSWORD, "scope": "offline_access identity"},
                          basic(APP_ID, APP_SECRET))["refresh_token"] for _ in range(count)]


class Peer:
    name = "oidc-provider"

    def __init__(self, work, algorithm, workers, format="jwt", script="server.mjs"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {"NODE_ENV": "production", "PORT": str(self.port), "ALG": algorithm, "FORMAT": format, "WORKERS": str(workers)}
        self.process = start(["node", script], env, os.path.join(work, "peer"),
                             os.path.join(work, f"peer-{algorithm}-{workers}-{script}.log"))
        wait_ready(self.base + "/.well-known/openid-configuration", self.process)

    def refresh_tokens(self, count):
        """Only with peer-refresh.mjs, which stands in for the interactive logins that would leave these behind."""
        with urllib.request.urlopen(f"{self.base}/bench/refresh-tokens?count={count}", timeout=30) as response:
            return json.loads(response.read())

    token_path, introspection_path, discovery_path, jwks_path = "/token", "/token/introspection", \
        "/.well-known/openid-configuration", "/jwks"


def cc_workload(server):
    return (server.base + server.token_path, "post.lua",
            {"BENCH_BODY": "grant_type=client_credentials&scope=api%3Aread", "BENCH_AUTH": basic(CLIENT_ID, CLIENT_SECRET)})


def introspection_workload(server):
    token = post_form(server.base + server.token_path, {"grant_type": "client_credentials", "scope": "api:read"},
                      basic(CLIENT_ID, CLIENT_SECRET))["access_token"]
    return (server.base + server.introspection_path, "post.lua",
            {"BENCH_BODY": "token=" + urllib.parse.quote(token), "BENCH_AUTH": basic(CLIENT_ID, CLIENT_SECRET)})


def refresh_workload(server, work):
    # Spare tokens: wrk sometimes asks for a connection's next request before it has handed over the answer that
    # carries the next refresh token.
    tokens = server.refresh_tokens(3 * CONNECTIONS)
    path = os.path.join(work, f"refresh-tokens-{server.name}.txt")
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return (server.base + server.token_path, "refresh.lua", {"BENCH_TOKENS": path, "BENCH_AUTH": basic(APP_ID, APP_SECRET)})


def password_workload(server):
    body = urllib.parse.urlencode({"grant_type": "password", "username": USER, "password": PASSWORD, "scope": "identity"})
    return (server.base + server.token_path, "post.lua", {"BENCH_BODY": body, "BENCH_AUTH": basic(APP_ID, APP_SECRET)})


def authorize_workloads(server):
    """The seed's /v1/authorize example, allowed (a member reads their organization's document: database facts, the
    seed's id convention, the Cedar engine) and denied (a reader from another tenant), asked by a service with a
    client_credentials token. The peer has no such endpoint."""
    admin = "Bearer " + post_json(server.base + "/api/v1/auth/login", {"email": USER, "password": PASSWORD})["access_token"]
    for email in ("alice@acme.bench", "mallory@rival.bench"):
        post_json(server.base + "/api/v1/users", {"email": email, "password": PASSWORD, "name": email, "email_verified": True}, admin)
    token = "Bearer " + post_form(server.base + server.token_path, {"grant_type": "client_credentials", "scope": "identity"},
                                  basic(PDP_ID, PDP_SECRET))["access_token"]
    workloads = []
    for label, principal, expected in (("allow", "alice@acme.bench", "Allow"), ("deny", "mallory@rival.bench", "Deny")):
        body = {"principal": {"type": "User", "id": principal}, "action": {"type": "Action", "id": "read"},
                "resource": {"type": "Document", "id": "org-acme-doc-001"},
                "context": {"organization_id": "acme-corp", "organization_domain": "acme.bench", "authenticated": True}}
        decision = post_json(server.base + "/v1/authorize", body, token)["decision"]
        if decision != expected:
            raise RuntimeError(f"/v1/authorize answered {decision} for {principal}, expected {expected}")
        env = {"BENCH_BODY": json.dumps(body), "BENCH_AUTH": token}
        workloads.append((label, lambda s, env=env: (s.base + "/v1/authorize", "authorize.lua", env)))
    return workloads


def summarize(runs):
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "cpu_us": statistics.median(r["cpu_us"] for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def compare(name, ours, peer, make, rounds, seconds, warmup, connections=CONNECTIONS):
    """A B A B ...: the same workload on both servers, alternately, after a warm-up of each. The workload is made
    afresh for every run: a refresh token spent in one run cannot be presented again in the next."""
    servers = [ours] + ([peer] if peer else [])
    for server in servers:
        url, script, env = make(server)
        wrk(url, warmup, script, env, connections)
    results = {server.name: [] for server in servers}
    for round_number in range(rounds):
        for server in servers:
            url, script, env = make(server)
            result = measure(server.process, url, seconds, script, env, connections)
            results[server.name].append(result)
            log(f"{name} round {round_number + 1} {server.name}: {result['rps']:.0f}/s p50 {result['p50']:.2f} ms "
                f"p99 {result['p99']:.2f} ms cpu {result['cpu_us']:.0f} us/req rss {result['rss_mb']:.0f} MB"
                + (f" ERRORS {result['errors']}" if result["errors"] else ""))
    return {server: summarize(runs) for server, runs in results.items()}


def compare_cc(work, ours, algorithm, target, common):
    """client_credentials against the peer's usual single process, which the target is set against, then against its
    two workers (its README says to compare with the better of the two), both reported."""
    rows = []
    for workers, label in ((1, ""), (2, " (peer: 2 workers)")):
        peer = Peer(work, algorithm, workers)
        try:
            rows.append((f"client_credentials {algorithm}{label}", target, compare(f"cc-{algorithm.lower()}", ours, peer, cc_workload, *common)))
        finally:
            stop(peer.process)
    return rows


def soak(ours, seconds):
    """Memory under a long client_credentials run: RSS after the first tenth and at the end."""
    url, script, env = cc_workload(ours)
    samples = []
    done = threading.Event()

    def sample():
        while not done.wait(1):
            samples.append(rss_mb(ours.process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = wrk(url, seconds, script, env)
    finally:
        done.set()
        sampler.join()
    early = statistics.median(samples[max(0, len(samples) // 10 - 2): len(samples) // 10 + 3])
    late = statistics.median(samples[-5:])
    return {"seconds": seconds, "rps": result["rps"], "early_mb": early, "late_mb": late, "peak_mb": max(samples),
            "errors": result["errors"]}


def start_postgres(work):
    binaries = sorted(d for d in os.listdir("/usr/lib/postgresql")) if os.path.isdir("/usr/lib/postgresql") else []
    if not binaries:
        raise RuntimeError("--postgres needs PostgreSQL's server binaries (apt-get install postgresql)")
    bin_dir = f"/usr/lib/postgresql/{binaries[-1]}/bin"
    data = os.path.join(work, "pg")
    os.makedirs(data)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(work, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    run(as_postgres + [f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"], stdout=subprocess.DEVNULL)
    run(as_postgres + [f"{bin_dir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(data, "log"), "-o",
                       f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start"],
        stdout=subprocess.DEVNULL)
    return f"Host=127.0.0.1;Port={port};Username=postgres", lambda: subprocess.run(
        as_postgres + [f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "stop"], stdout=subprocess.DEVNULL)


def ratio(ours, peer):
    return ours / peer if peer else float("nan")


def report(path, args, rows, hasher_limit, soak_result, versions):
    lines = [
        f"# Benchmark {datetime.date.today().isoformat()}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; {versions}. "
        f"Database: {'PostgreSQL' if args.postgres else 'SQLite'}. wrk -t1 -c{CONNECTIONS}, {args.rounds} rounds of "
        f"{args.duration} s per server, alternating; medians of the rounds (peak RSS: the maximum).",
        "",
        "| workload | identity req/s | peer req/s | ratio | target | identity p50 / p99 ms | peer p50 / p99 ms "
        "| identity CPU µs/req | peer CPU µs/req | identity peak RSS MB | peer peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, target, results in rows:
        ours, peer = results["identity"], results.get("oidc-provider")
        flag = " (errors!)" if ours["errors"] or (peer and peer["errors"]) else ""
        lines.append(
            f"| {name}{flag} | {ours['rps']:.0f} | {peer['rps']:.0f} | {ratio(ours['rps'], peer['rps']):.2f}x | {target} | "
            f"{ours['p50']:.2f} / {ours['p99']:.2f} | {peer['p50']:.2f} / {peer['p99']:.2f} | {ours['cpu_us']:.0f} | "
            f"{peer['cpu_us']:.0f} | {ours['rss_mb']:.0f} | {peer['rss_mb']:.0f} |" if peer else
            f"| {name}{flag} | {ours['rps']:.0f} | n/a | | {target} | {ours['p50']:.2f} / {ours['p99']:.2f} | | "
            f"{ours['cpu_us']:.0f} | | {ours['rss_mb']:.0f} | |")
    if hasher_limit:
        password = next((r["identity"]["rps"] for n, _, r in rows if n == "password login"), None)
        if password:
            lines += ["", f"Password hasher limit (ASP.NET Core Identity's hasher alone, all cores, median of runs between the rounds): {hasher_limit:.1f} "
                          f"verifications/s; password login reaches {password / hasher_limit:.0%} of it (target 85%)."]
    if soak_result:
        lines += ["", f"Soak: client_credentials for {soak_result['seconds']} s at {soak_result['rps']:.0f}/s: RSS "
                      f"{soak_result['early_mb']:.0f} MB early, {soak_result['late_mb']:.0f} MB at the end, peak "
                      f"{soak_result['peak_mb']:.0f} MB (target: under 300 MB, no growth)."]
    lines += ["", "Refresh runs against the peer as set up by benchmarks/peer-refresh.mjs (rotation on every use, one process, "
                  "tokens in memory; ours record each rotation in the database). Password login and /v1/authorize have no peer figure: "
                  "the peer has neither a password grant nor a policy decision endpoint."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=15,
                        help="seconds of warm-up per server and workload (.NET tiers its JIT up over the first seconds)")
    parser.add_argument("--soak", type=int, default=60, help="seconds of the memory soak (0: skip)")
    parser.add_argument("--postgres", action="store_true", help="run the server on PostgreSQL instead of SQLite")
    parser.add_argument("--only", help="comma-separated workloads: cc-rs256,cc-es256,discovery,jwks,introspection,refresh,password,authorize")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    wanted = lambda name: only is None or name in only

    for tool in ("wrk", "node", "npm", "dotnet"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (wrk: apt-get install wrk; node and npm: the machine's Node.js)")

    work = tempfile.mkdtemp(prefix="identity-bench-")
    stop_postgres = None
    try:
        log(f"building the server in Release into {work}/app")
        app = os.path.join(work, "app")
        run(["dotnet", "publish", os.path.join(REPO, "src", "Identity.Server"), "-c", "Release", "-o", app, "--nologo", "-v", "q"],
            stdout=subprocess.DEVNULL)
        hasher = os.path.join(work, "hasher")
        run(["dotnet", "publish", os.path.join(HERE, "HasherLimit"), "-c", "Release", "-o", hasher, "--nologo", "-v", "q"],
            stdout=subprocess.DEVNULL)
        log("installing the peer")
        shutil.copytree(PEER_SOURCE, os.path.join(work, "peer"))
        shutil.copy(os.path.join(HERE, "peer-refresh.mjs"), os.path.join(work, "peer"))
        run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=os.path.join(work, "peer"), stdout=subprocess.DEVNULL)
        postgres = None
        if args.postgres:
            postgres, stop_postgres = start_postgres(work)

        versions = "dotnet " + subprocess.run(["dotnet", "--version"], capture_output=True, text=True).stdout.strip() + \
                   ", node " + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        rows, hasher_limit, soak_result = [], None, None
        common = (args.rounds, args.duration, args.warmup)

        rs256 = {"cc-rs256", "introspection", "discovery", "jwks", "refresh", "password", "authorize"}
        if any(wanted(w) for w in rs256):
            ours = Ours(work, app, "RS256", postgres)
            try:
                if wanted("cc-rs256"):
                    rows += compare_cc(work, ours, "RS256", "1.3x, p99 no worse", common)
                if wanted("introspection"):
                    # oidc-provider introspects only the tokens it stores (opaque ones), not its JWT access tokens, and
                    # stores them in its process's memory: one process, as two workers cannot see each other's tokens.
                    peer = Peer(work, "RS256", 1, format="opaque")
                    try:
                        rows.append(("introspection (peer: opaque tokens)", "1.0x", compare("introspection", ours, peer, introspection_workload, *common)))
                    finally:
                        stop(peer.process)
                if wanted("discovery") or wanted("jwks"):
                    # node is single-threaded: the peer's better figure for these comes from two workers.
                    peer = Peer(work, "RS256", 2)
                    try:
                        if wanted("discovery"):
                            rows.append(("discovery (peer: 2 workers)", "1.1x", compare(
                                "discovery", ours, peer, lambda s: (s.base + s.discovery_path, None, None), *common)))
                        if wanted("jwks"):
                            rows.append(("JWKS (peer: 2 workers)", "1.1x", compare(
                                "jwks", ours, peer, lambda s: (s.base + s.jwks_path, None, None), *common)))
                    finally:
                        stop(peer.process)
                if wanted("refresh"):
                    # One peer process: its tokens live in that process's memory, which a second worker cannot see.
                    peer = Peer(work, "RS256", 1, script="peer-refresh.mjs")
                    try:
                        rows.append(("refresh (rotation; peer: in-memory store)", "1.0x",
                                     compare("refresh", ours, peer, lambda s: refresh_workload(s, work), *common)))
                    finally:
                        stop(peer.process)
                if wanted("password"):
                    # About 30 logins/s: a 15 s warm-up is a few hundred requests, and .NET goes on compiling the
                    # request path to its final tier for about a minute at that rate (24,000 JIT-compiled methods
                    # after 10 s, 36,000 after 70 s, none after), so this workload warms up for at least 60 s. The
                    # hasher's own limit moves 10% between runs here, so it is measured between the rounds, like a peer.
                    url, script, env = password_workload(ours)
                    wrk(url, max(args.warmup, 60), script, env)
                    runs, limits = [], []
                    for round_number in range(args.rounds):
                        runs.append(measure(ours.process, url, args.duration, script, env))
                        limits.append(float(subprocess.run(["dotnet", os.path.join(hasher, "HasherLimit.dll"), "10"],
                                                           capture_output=True, text=True, check=True).stdout))
                        log(f"password round {round_number + 1} identity: {runs[-1]['rps']:.1f}/s cpu {runs[-1]['cpu_us']:.0f} us/req; "
                            f"hasher alone: {limits[-1]:.1f}/s")
                    rows.append(("password login", "85% of hasher", {"identity": summarize(runs)}))
                    hasher_limit = statistics.median(limits)
                    log(f"password hasher limit (median of {len(limits)}): {hasher_limit:.1f}/s")
                if wanted("authorize"):
                    # A policy decision point serves a few services' connection pools: 8 connections, not 32.
                    for label, make in authorize_workloads(ours):
                        rows.append((f"/v1/authorize {label} ({AUTHORIZE_CONNECTIONS} connections)", "10,000/s, p99 < 5 ms",
                                     compare(f"authorize-{label}", ours, None, make, *common, connections=AUTHORIZE_CONNECTIONS)))
                if args.soak and only is None:
                    log(f"memory soak: {args.soak} s of client_credentials")
                    soak_result = soak(ours, args.soak)
            finally:
                stop(ours.process)

        if wanted("cc-es256"):
            ours = Ours(work, app, "ES256", postgres)
            try:
                rows += compare_cc(work, ours, "ES256", "1.5x", common)
            finally:
                stop(ours.process)

        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        suffix = ("-postgres" if args.postgres else "") + ("-" + args.only.replace(",", "-") if args.only else "")
        path = os.path.join(HERE, "results", f"{datetime.date.today().isoformat()}{suffix}.md")
        report(path, args, rows, hasher_limit, soak_result, versions)
        log(f"wrote {path}")
        print(open(path).read())
    finally:
        stop_all()
        if stop_postgres:
            stop_postgres()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
