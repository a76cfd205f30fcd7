#!/usr/bin/env python3
"""Decisions per second of POST /v1/authorize on this machine.

Publishes the server in Release, starts it on 127.0.0.1 with a fresh SQLite database (or PostgreSQL with
--postgres CONNECTION), creates an acme.bench user, and runs wrk against three workloads with a client-credentials
token: "baseline" (an empty body: authentication, routing and the 400 answer, no decision), "allow" (the seed's
member-reads-document example: database facts, seed id convention, engine) and "deny" (a cross-tenant read).
The decision's own cost is allow/deny minus baseline. Prints a markdown table and writes it to
benchmarks/results/authorize-<date>.md. Loopback only; stops the server it starts.
"""
import argparse
import base64
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ADMIN, PASSWORD = "admin@admin.bench", "a long enough passphrase"
CLIENT_ID, CLIENT_SECRET = "bench-rs", "bench-rs-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None, token=None, form=False, auth=None):
    data = None
    request = urllib.request.Request(url, method="POST" if body is not None else "GET")
    if body is not None:
        data = (urllib.parse.urlencode(body) if form else json.dumps(body)).encode()
        request.add_header("Content-Type", "application/x-www-form-urlencoded" if form else "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if auth:
        request.add_header("Authorization", auth)
    with urllib.request.urlopen(request, data=data, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wrk(url, seconds, connections, body, token):
    env = {**os.environ, "BENCH_BODY": json.dumps(body), "BENCH_AUTH": "Bearer " + token}
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", os.path.join(HERE, "authorize.lua"), url],
                         env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def ms(label):
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, ms("50"), ms("99"), int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--postgres", help="an Npgsql connection string; default SQLite")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="authorize-bench-")
    app = os.path.join(work, "app")
    subprocess.run(["dotnet", "publish", os.path.join(REPO, "src", "Identity.Server"), "-c", "Release", "-o", app, "--nologo", "-v", "q"], check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ASPNETCORE_ENVIRONMENT": "Production", "ASPNETCORE_URLS": base,
        "Identity__Keys__Path": os.path.join(work, "keys"), "Identity__RateLimiting__Enabled": "false",
        "Logging__LogLevel__Default": "Warning",
        "Identity__Admin__Email": ADMIN, "Identity__Admin__Password": PASSWORD,
        "Identity__Clients__0__ClientId": CLIENT_ID, "Identity__Clients__0__ClientSecret": CLIENT_SECRET,
        "Identity__Clients__0__GrantTypes__0": "client_credentials", "Identity__Clients__0__Scopes__0": "identity",
    }
    if args.postgres:
        env["Identity__Database__Provider"] = "PostgreSql"
        env["ConnectionStrings__Identity"] = args.postgres + ";Database=identity_authorize_bench"
    else:
        env["ConnectionStrings__Identity"] = "Data Source=" + os.path.join(work, "identity.db")
    server = subprocess.Popen(["dotnet", os.path.join(app, "Identity.Server.dll")], env=env, cwd=app,
                              stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/health/ready", timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        admin = call(base + "/api/v1/auth/login", {"email": ADMIN, "password": PASSWORD})["access_token"]
        for email in ("alice@acme.bench", "mallory@rival.bench"):
            call(base + "/api/v1/users", {"email": email, "password": PASSWORD, "name": email, "email_verified": True}, token=admin)
        token = call(base + "/connect/token", {"grant_type": "client_credentials", "scope": "identity"}, form=True,
                     auth="Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode())["access_token"]

        def seed(principal):
            return {"principal": {"type": "User", "id": principal}, "action": {"type": "Action", "id": "read"},
                    "resource": {"type": "Document", "id": "org-acme-doc-001"},
                    "context": {"organization_id": "acme-corp", "organization_domain": "acme.bench", "authenticated": True}}
        assert call(base + "/v1/authorize", seed("alice@acme.bench"), token=token)["decision"] == "Allow"
        assert call(base + "/v1/authorize", seed("mallory@rival.bench"), token=token)["decision"] == "Deny"

        workloads = [("baseline (400, no decision)", {}), ("allow (seed example)", seed("alice@acme.bench")),
                     ("deny (cross-tenant)", seed("mallory@rival.bench"))]
        wrk(base + "/v1/authorize", 3, args.connections, workloads[1][1], token)   # warm-up
        rows = []
        for name, body in workloads:
            rps, p50, p99, non2xx = wrk(base + "/v1/authorize", args.duration, args.connections, body, token)
            rows.append((name, rps, p50, p99, non2xx))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        shutil.rmtree(work, ignore_errors=True)

    database = "PostgreSQL" if args.postgres else "SQLite"
    lines = [f"# /v1/authorize, {datetime.date.today()}, {os.cpu_count()} cores, {database}, wrk -c{args.connections} -d{args.duration}s", "",
             "| workload | requests/s | p50 ms | p99 ms | non-2xx |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {r:,.0f} | {a:.2f} | {b:.2f} | {e} |" for n, r, a, b, e in rows]
    lines += ["", f"Median added by a decision over the baseline: allow {rows[1][2] - rows[0][2]:.2f} ms, deny {rows[2][2] - rows[0][2]:.2f} ms."]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"authorize-{datetime.date.today()}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
