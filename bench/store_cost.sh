#!/usr/bin/env bash
# What one Redis-backed token costs the machine, for A/B comparisons of builds whose
# tokens/s the VM's noise hides (bench/run.sh's S9 and S14 move by 30 % between runs of
# one binary): for each binary and round, a fresh Redis and server, then wrk -t2 -c16 for
# DURATION seconds on the identity-token exchange (S9's request) and on a web sign-in
# password login (S14's), and per request: our CPU, redis-server's CPU and our context
# switches (all threads, from /proc), beside wrk's tokens/s. Rounds alternate the binaries.
#
#   bench/store_cost.sh BIN [BIN...]          # ROUNDS=3 DURATION=5 by default
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/store_cost.sh BIN [BIN...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
work=$(mktemp -d)
mkdir -p "$work/log"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ec.key" -out "$work/ec.pem" \
  -days 30 -subj /CN=bench 2>/dev/null
hash=$(printf 'benchpw\n' | "$1" hash-password --cost 5 2>/dev/null | tail -1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }

one() { # BIN scenario(S9|S14)
  local bin=$1 scenario=$2 sport redis server token url
  sport=$(free_port)
  start_redis
  redis=$redis_pid
  {
    printf 'server:\n  addr: "127.0.0.1:%s"\ntoken:\n  issuer: "bench"\n  expiration: 900\n' "$sport"
    printf '  certificate: "%s/ec.pem"\n  key: "%s/ec.key"\n' "$work" "$work"
    printf 'users:\n  "user5":\n    password: "%s"\n' "$hash"
    printf 'acl:\n  - match: {account: "/.+/"}\n    actions: ["pull", "push"]\n'
    printf 'store:\n  redis:\n    addr: "%s"\n' "$REDIS_ADDR"
    if [ "$scenario" = S14 ]; then
      printf 'oidc_auth:\n  issuer: "http://127.0.0.1:%s"\n  redirect_url: "http://127.0.0.1:%s/oidc_auth"\n' "$(free_port)" "$sport"
      printf '  client_id: bench\n  client_secret: bench\n'
    fi
  } >"$work/config.yml"
  if [ "$scenario" = S14 ]; then
    redis-cli -p "${REDIS_ADDR##*:}" SET 't:web@bench.example' "$(web_signin_record "$hash")" >/dev/null
  fi
  "$bin" serve "$work/config.yml" 2>"$work/log/server.log" &
  server=$!
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$sport/" && break; sleep 0.05; done
  url="http://127.0.0.1:$sport/auth"
  if [ "$scenario" = S9 ]; then
    token=$(curl -s -u user5:benchpw "$url?service=registry&offline_token=true&client_id=bench" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    lua_refresh_grant "$token"
  else
    lua_header 'web@bench.example:benchpw'
    url="$url?service=registry&scope=repository:bench/app:pull,push"
  fi
  wrk -t2 -c16 -d1s -s "$work/req.lua" "$url" >/dev/null # warm-up: connections, caches
  local s0 r0 c0 out s1 r1 c1
  s0=$(cpu_ticks $server); r0=$(cpu_ticks $redis); c0=$(switches $server)
  out=$(wrk -t2 -c16 -d"${DURATION}s" -s "$work/req.lua" "$url")
  s1=$(cpu_ticks $server); r1=$(cpu_ticks $redis); c1=$(switches $server)
  kill "$server" "$redis"; wait "$server" "$redis" 2>/dev/null || true
  awk -v out="$out" -v s=$((s1 - s0)) -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
    -v name="$scenario $(basename "$bin")" 'BEGIN {
      n = 0; rps = 0; bad = 0; split(out, lines, "\n")
      for (i in lines) {
        if (lines[i] ~ /requests in/) { split(lines[i], f, " "); n = f[1] }
        if (lines[i] ~ /Requests\/sec/) { split(lines[i], f, " "); rps = f[2] }
        if (lines[i] ~ /Non-2xx/) { split(lines[i], f, " "); bad = f[5] }
      }
      printf "%-22s %8.0f tokens/s %7.1f us ours %6.1f us redis %5.2f switches/req %s\n", name, rps, s * 1e6 / hz / n, r * 1e6 / hz / n, c / n, (bad ? bad " non-2xx" : "")
    }'
}

for _ in $(seq "$ROUNDS"); do
  for scenario in S9 S14; do
    for bin in "$@"; do one "$bin" "$scenario"; done
  done
done
