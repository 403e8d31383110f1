# Pieces bench/run.sh and bench/store_cost.sh share, so that both send the same requests to
# the same kind of store. Sourced; expects $work (a scratch directory with a log/ inside).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A Redis of its own on a free port: sets redis_pid and REDIS_ADDR.
start_redis() {
  local port; port=$(free_port); mkdir -p "$work/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no >"$work/log/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  REDIS_ADDR="127.0.0.1:$port"
}
stop_redis() { kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""; }

# req.lua sending Basic credentials ($1 = user:password).
lua_header() { printf 'wrk.headers["Authorization"] = "Basic %s"\n' "$(printf '%s' "$1" | base64 -w0)" > "$work/req.lua"; }

# req.lua exchanging identity token $1 with the POST refresh grant (S8/S9).
lua_refresh_grant() {
  {
    printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
    printf 'wrk.body = "grant_type=refresh_token&refresh_token=%s&client_id=bench&service=registry&scope=repository:bench/app:pull,push"\n' "$1"
  } > "$work/req.lua"
}

# A web sign-in record (docker_auth's t:<account> JSON) whose password has bcrypt hash $1,
# valid far ahead so that the provider is never asked (S13/S14).
web_signin_record() {
  printf '{"token_type":"Bearer","access_token":"bench","valid_until":"2099-01-01T00:00:00Z","docker_password":"%s","labels":{"groups":["bench"]}}' "$1"
}
