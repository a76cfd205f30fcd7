-- POST a JSON body. Env: BENCH_BODY, BENCH_AUTH (value of the Authorization header).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
