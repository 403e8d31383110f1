#!/usr/bin/env bash
# Token-server benchmark: builds the release binary, starts it on 127.0.0.1 with generated
# keys and configs, drives it with wrk, and prints one table row per scenario next to the
# two bounds measured in the same run (crypto: bcrypt + the fastest signature on the
# machine, x cores; HTTP floor: the same server and wrk settings on the trivial index
# route), then the latency at half the measured maximum rate (wrk paced by a Lua delay).
# The signature bound is the faster of `openssl speed` (same algorithm and key size) and
# the signing crate's bare primitive (`crypto_bound sign-raw`, same key), never our own
# token path, so the distance between our CPU per token and the bound stays visible.
# Then the HTTPS scenarios (EC P-256 certificate, anonymous ES256): keep-alive, a new
# connection (full handshake) per token, and a resumed session per token.
#
# The server logs one audit line per token, into a directory of its own: a log file
# beside the config would wake the config watcher on every line.
#
#   bench/run.sh                 # all scenarios, 8 s each
#   DURATION=20 bench/run.sh     # longer runs
#   ONLY="S5 S8 S9 S10 S11 S12 S13 S14" bench/run.sh   # some scenarios (S8-S10, S12-S14 need S5; HTTPS rows: H)
#   BIN=/tmp/old/registry-auth TOOL=/tmp/old/crypto_bound bench/run.sh   # given binaries
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-8}
ONLY=${ONLY:-}
# want ID: whether scenario ID (S1..S14, H) runs (S5r runs with S14).
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
CORES=$(nproc)

command -v wrk >/dev/null || scripts/install-deps.sh
# BIN=... TOOL=... measure given binaries (e.g. copies of an earlier build) instead.
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin registry-auth --example crypto_bound
  BIN=target/release/registry-auth
  TOOL=target/release/examples/crypto_bound
fi
TOOL=${TOOL:-target/release/examples/crypto_bound}

work=$(mktemp -d)
# shellcheck source=bench/common.sh
. bench/common.sh
server_pid=""
redis_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Keys: RSA-2048 and EC P-256 self-signed pairs.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/rsa.key" -out "$work/rsa.pem" -days 30 -subj /CN=bench 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ec.key" -out "$work/ec.pem" -days 30 -subj /CN=bench 2>/dev/null

# Users: one at cost 5, one at cost 10, and enough distinct cost-5 users for S7 that no
# account repeats (so none can be served from the credential cache): accounts 0-24999 for
# the full-load run, 25000-29999 to calibrate the half-load run, 30000-44999 for it.
MANY_USERS=45000
hash5=$($TOOL hash 5 benchpw)
hash10=$($TOOL hash 10 benchpw)
if want S7; then $TOOL users 5 "$MANY_USERS" benchpw > "$work/many_users.yml"; fi
mkdir -p "$work/log"

acl_entries() { # $1 = number of entries; the last one is the one that matches
  local n=$1 i
  for ((i = 0; i < n - 1; i++)); do
    case $((i % 4)) in
      0) printf '  - match: {account: "team%d-*", name: "team%d/*"}\n    actions: ["pull", "push"]\n' "$i" "$i" ;;
      1) printf '  - match: {account: "/^svc-%d-[a-z]+$/", name: "/^svc%d/.+/"}\n    actions: ["pull"]\n' "$i" "$i" ;;
      2) printf '  - match: {account: "${account}", name: "ns%d/${account}/*"}\n    actions: ["*"]\n' "$i" ;;
      3) printf '  - match: {ip: "10.%d.0.0/16", name: "lab%d/*"}\n    actions: ["pull"]\n' "$((i % 250))" "$i" ;;
    esac
  done
  printf '  - match: {type: "repository"}\n    actions: ["pull", "push"]\n    comment: "the match"\n'
}

write_config() { # $1 key kind (rsa|ec), $2 acl entry count, $3 users file (optional)
  local port=$4
  {
    printf 'server:\n  addr: "127.0.0.1:%s"\ntoken:\n  issuer: "bench"\n  expiration: 900\n' "$port"
    printf '  certificate: "%s/%s.pem"\n  key: "%s/%s.key"\n' "$work" "$1" "$work" "$1"
    printf 'users:\n  "": {}\n  "user5":\n    password: "%s"\n  "user10":\n    password: "%s"\n' "$hash5" "$hash10"
    [ -n "$3" ] && cat "$3"
    printf 'acl:\n'
    acl_entries "$2"
  } > "$work/config.yml"
}


# Waits for the index route; a large config (S7's 45,000 users) takes seconds to load on a
# busy machine, so the wait is long, but a server that exits is reported at once.
start_server() {
  "$BIN" serve "$work/config.yml" 2>"$work/log/server.log" &
  server_pid=$!
  for _ in $(seq 1200); do
    curl -sk -o /dev/null "$SCHEME://$ADDR/" && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      printf 'the server exited before answering; its log:\n' >&2
      cat "$work/log/server.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  printf 'the server did not answer on %s within 60 s; its log:\n' "$ADDR" >&2
  cat "$work/log/server.log" >&2
  exit 1
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
SCHEME=http
rss_kb() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$server_pid/status"; }

# wrk Lua: a fixed header, or a different user per request.
# lua_many_users FIRST COUNT: accounts FIRST..FIRST+COUNT-1, each wrk thread walking its own
# share of them, so that no account is used twice while there are fresh ones.
lua_many_users() {
  {
    printf 'local auth = {\n'
    python3 -c 'import base64,sys
first, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + count): print("\"Basic %s\"," % base64.b64encode(b"user%d:benchpw" % i).decode())' "$1" "$2"
    printf '}\nlocal n, first, share = 0, 0, math.floor(#auth / %d)\nlocal next_first = 0\n' "$THREADS"
    printf 'setup = function(thread) thread:set("first", next_first); next_first = next_first + share end\n'
    printf 'init = function() first = wrk.thread:get("first") end\n'
    printf 'request = function()\n  n = n + 1\n'
    printf '  wrk.headers["Authorization"] = auth[first + (n %% share) + 1]\n  return wrk.format(nil)\nend\n'
  } > "$work/req.lua"
}

# Fields of wrk's report (its output in $1): requests/s, a latency percentile ($2 = "99%"),
# and the non-2xx count (wrk prints that line only when there are some).
wrk_rps() { awk '/^Requests\/sec/ {print $2}' <<<"$1"; }
wrk_pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses/ {n = $5} END {print n + 0}' <<<"$1"; }

# Pacing: each connection waits PACED_DELAY_MS (wrk's delay() has whole-ms resolution)
# after each response, so a connection sends one request per delay + latency and the rate
# is set by the number of connections. The wait is 2 ms, or longer at low rates so that
# there are at least 8 connections to adjust: about as many connections as the full-load
# run, since tails grow with the connection count (docs/performance.md).
add_delay() { printf 'delay = function() return %d end\n' "$PACED_DELAY_MS" >> "$work/req.lua"; }

# paced_wrk SECONDS CONNECTIONS PATH → wrk output
paced_wrk() {
  local threads=$(($2 < THREADS ? $2 : THREADS))
  wrk -t"$threads" -c"$2" -d"$1s" --latency -s "$work/req.lua" "http://$ADDR$3"
}

# run_paced PATH RATE PREPARE → sets HALF_RPS HALF_P99 HALF_NON2XX. `PREPARE calibrate` and
# `PREPARE measure` write req.lua for each run. Latency lengthens each connection's cycle,
# so a 3 s calibration run scales the number of connections to the rate it reached.
run_paced() {
  local out reached conns
  PACED_DELAY_MS=$(awk -v r="$2" 'BEGIN {d = int(8000 / (r > 0 ? r : 1) + 0.999); print (d < 2 ? 2 : d)}')
  conns=$(awk -v r="$2" -v d="$PACED_DELAY_MS" 'BEGIN {c = int(r * d / 1000 + 0.5); print (c < 1 ? 1 : c)}')
  "$3" calibrate; add_delay
  reached=$(wrk_rps "$(paced_wrk 3 "$conns" "$1")")
  conns=$(awk -v c="$conns" -v want="$2" -v got="$reached" 'BEGIN {if (got > 0) c = int(c * want / got + 0.5); print (c < 1 ? 1 : c)}')
  "$3" measure; add_delay
  out=$(paced_wrk "$DURATION" "$conns" "$1")
  HALF_RPS=$(printf '%.0f' "$(wrk_rps "$out")")
  HALF_P99=$(wrk_pct "$out" 99%)
  HALF_NON2XX=$(wrk_non2xx "$out")
}

# The credential cache's hit rate over the run, from the server's /metrics.
cache_hits() {
  curl -s "http://$ADDR/metrics" | awk '
    /^registry_auth_credential_cache_total\{result="hit"\}/ {h = $2}
    /^registry_auth_credential_cache_total\{result="miss"\}/ {m = $2}
    END {if (h + m == 0) print "-"; else printf "%.0f%%", 100 * h / (h + m)}'
}

# run_wrk PATH → sets RPS P50 P99 NON2XX CPU_US
run_wrk() {
  local ticks0 ticks1 hz out requests
  hz=$(getconf CLK_TCK)
  ticks0=$(cpu_ticks)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/req.lua" "$SCHEME://$ADDR$1")
  ticks1=$(cpu_ticks)
  RPS=$(wrk_rps "$out")
  P50=$(wrk_pct "$out" 50%)
  P99=$(wrk_pct "$out" 99%)
  NON2XX=$(wrk_non2xx "$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  CPU_US=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" -v r="$requests" 'BEGIN {printf "%.0f", t / hz * 1e6 / r}')
}

# warm_up PATH: 2 s of the scenario's own requests, not measured. The rows measured beside
# S5 (S8-S14) start on a server that has served nothing, while S5's run follows its HTTP
# floor run on the same server; without this the first of their seconds (threads, caches,
# allocator growth) counted against them alone.
warm_up() { wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$work/req.lua" "$SCHEME://$ADDR$1" > /dev/null; }

# openssl_sign_us ALGORITHM → µs per signature (`openssl speed -mr` prints signs per second).
openssl_sign_us() {
  openssl speed -seconds 2 -mr "$1" 2>/dev/null | awk -F: '/^\+F[24]:/ {printf "%.1f", 1e6 / $4; exit}'
}
declare -A SIGN_US RAW_US OPENSSL_US BOUND_US BCRYPT_US
OPENSSL_US[rsa]=$(openssl_sign_us rsa2048)
OPENSSL_US[ec]=$(openssl_sign_us ecdsap256)
for kind in rsa ec; do
  SIGN_US[$kind]=$($TOOL sign "$work/$kind.pem" "$work/$kind.key")
  RAW_US[$kind]=$($TOOL sign-raw "$work/$kind.pem" "$work/$kind.key")
  BOUND_US[$kind]=$(awk -v a="${OPENSSL_US[$kind]}" -v b="${RAW_US[$kind]}" 'BEGIN {print (a < b ? a : b)}')
done
for cost in 5 10; do BCRYPT_US[$cost]=$($TOOL bcrypt "$cost"); done

# The machine may be shared: the load average is printed at the start and the end.
load() { cut -d' ' -f1-3 /proc/loadavg; }
trap 'printf "\nload average at the end: %s (%s)\n" "$(load)" "$(date -u +%Y-%m-%dT%H:%MZ)"; cleanup' EXIT
printf '\nregistry-auth %s (%s), %s, %d cores, wrk -t%d -c%d -d%ss (wrk shares the cores), load average %s\n' \
  "$(git describe --always --dirty 2>/dev/null || echo '?')" "$BIN" "$(date -u +%Y-%m-%dT%H:%MZ)" "$CORES" "$THREADS" "$CONNECTIONS" "$DURATION" "$(load)"
printf 'single-core signature, us: RSA-2048 openssl %s, aws-lc-rs %s, our whole token %s; EC P-256 openssl %s, aws-lc-rs %s, our whole token %s\n' \
  "${OPENSSL_US[rsa]}" "${RAW_US[rsa]}" "${SIGN_US[rsa]}" "${OPENSSL_US[ec]}" "${RAW_US[ec]}" "${SIGN_US[ec]}"
printf 'single-core bcrypt, us: cost 5 %s, cost 10 %s\n\n' "${BCRYPT_US[5]}" "${BCRYPT_US[10]}"
printf '%-34s %9s %8s %8s %6s %8s %8s %9s %9s %9s %7s %9s %9s %7s %7s\n' scenario tokens/s p50 p99 non2xx cpu_us/req \
  bound_us crypto_bd http_floor fraction cache_hit half_rate p99@half idle_MB peak_MB
SCENARIO_URL='/auth?service=registry&scope=repository:bench/app:pull,push'

# req.lua for the half-load runs: the full-load requests again, or unused accounts for S7.
same_requests() { cp "$work/req.lua.max" "$work/req.lua"; }
fresh_accounts() { if [ "$1" = calibrate ]; then lua_many_users 25000 5000; else lua_many_users 30000 15000; fi; }

scenario() { # name kind acl_entries users_file auth(anon|user5|user10|many) bcrypt_cost
  local name=$1 kind=$2 entries=$3 users=$4 auth=$5 cost=$6 port idle peak floor bound lower hits
  port=$(free_port); ADDR="127.0.0.1:$port"
  write_config "$kind" "$entries" "$users" "$port"
  start_server
  idle=$(rss_kb VmRSS)
  printf '' > "$work/req.lua"
  run_wrk /
  floor=$RPS
  case $auth in
    anon) printf '' > "$work/req.lua" ;;
    user5) lua_header user5:benchpw ;;
    user10) lua_header user10:benchpw ;;
    many) lua_many_users 0 25000 ;;
  esac
  run_wrk "$SCENARIO_URL"
  hits=$(cache_hits)
  peak=$(rss_kb VmHWM)
  cp "$work/req.lua" "$work/req.lua.max"
  local prepare=same_requests
  [ "$auth" = many ] && prepare=fresh_accounts
  run_paced "$SCENARIO_URL" "$(awk -v r="$RPS" 'BEGIN {print r / 2}')" "$prepare"
  stop_server
  local per_token=${BOUND_US[$kind]}
  [ "$cost" != 0 ] && per_token=$(awk -v a="$per_token" -v b="${BCRYPT_US[$cost]}" 'BEGIN {print a + b}')
  bound=$(awk -v c="$CORES" -v us="$per_token" 'BEGIN {printf "%.0f", c * 1e6 / us}')
  lower=$(awk -v a="$bound" -v b="$floor" 'BEGIN {print (a < b ? a : b)}')
  printf '%-34s %9.0f %8s %8s %6s %8s %8s %9s %9.0f %8.0f%% %9s %9s %9s %7.1f %7.1f\n' "$name" "$RPS" "$P50" "$P99" \
    "$((NON2XX + HALF_NON2XX))" "$CPU_US" "$per_token" "$bound" "$floor" "$(awk -v r="$RPS" -v l="$lower" 'BEGIN {print 100 * r / l}')" \
    "$hits" "$HALF_RPS" "$HALF_P99" "$(awk -v k="$idle" 'BEGIN {print k / 1024}')" "$(awk -v k="$peak" 'BEGIN {print k / 1024}')"
}

want S1 && scenario "S1 anonymous, RSA-2048" rsa 10 "" anon 0
want S4 && scenario "S4 anonymous, EC P-256" ec 10 "" anon 0
want S2 && scenario "S2 user bcrypt 5, RSA-2048" rsa 10 "" user5 5
if want S5 || want S8 || want S9 || want S10 || want S12 || want S13 || want S14; then
  scenario "S5 user bcrypt 5, EC P-256" ec 10 "" user5 5
  S5_RPS=$RPS
fi
want S3 && scenario "S3 user bcrypt 10, RSA-2048" rsa 10 "" user10 10
want S6 && scenario "S6 anonymous, 1000-entry ACL, EC" ec 1000 "" anon 0
want S6 && scenario "S6 baseline: 10-entry ACL, EC" ec 10 "" anon 0
want S7 && scenario "S7 distinct users, bcrypt 5, EC" ec 10 "$work/many_users.yml" many 5

# Stored credentials beside S5 (same key, ACL and scope): S8/S9 exchange an identity token
# with the POST refresh grant (embedded store / Redis), S10 logs in as a robot (Basic, no
# bcrypt). Targets: >= 90 % of S5's tokens/s embedded, >= 70 % with Redis.
# (start_redis, stop_redis, lua_refresh_grant: bench/common.sh)

stored_scenario() { # name engine(embedded|redis) auth(refresh|robot|user)
  local name=$1 engine=$2 auth=$3 port token secret
  port=$(free_port); ADDR="127.0.0.1:$port"
  write_config ec 10 "" "$port"
  rm -rf "$work/data"
  if [ "$engine" = redis ]; then
    start_redis
    printf 'store:\n  redis:\n    addr: "%s"\n' "$REDIS_ADDR" >> "$work/config.yml"
  else
    printf 'store:\n  path: "%s/data"\n' "$work" >> "$work/config.yml"
  fi
  start_server
  if [ "$auth" = user ]; then
    lua_header user5:benchpw
    warm_up "$SCENARIO_URL"
    run_wrk "$SCENARIO_URL"
  elif [ "$auth" = refresh ]; then
    token=$(curl -s -u user5:benchpw "http://$ADDR/auth?service=registry&offline_token=true&client_id=bench" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    lua_refresh_grant "$token"
    warm_up /auth
    run_wrk /auth
  else
    secret=$("$BIN" robot create bench --scope 'repository:bench/*:pull,push' --config "$work/config.yml" | awk '/^secret:/ {print $2}')
    lua_header "robot\$bench:$secret"
    warm_up "$SCENARIO_URL"
    run_wrk "$SCENARIO_URL"
  fi
  stop_server
  [ "$engine" = redis ] && stop_redis
  printf '%-34s %9.0f %8s %8s %6s %8s %9s %9s %8.0f%% of S5\n' "$name" "$RPS" "$P50" "$P99" "$NON2XX" "$CPU_US" - - \
    "$(awk -v r="$RPS" -v s="$S5_RPS" 'BEGIN {print 100 * r / s}')"
}

want S8 && stored_scenario "S8 identity token, embedded, EC" embedded refresh
want S9 && stored_scenario "S9 identity token, Redis, EC" redis refresh
want S10 && stored_scenario "S10 robot login, embedded, EC" embedded robot

# S11 failed-login flood (issue 12: 2,000 requests/s from one address must cost other
# users' p99 less than 2 ms). Client addresses from X-Real-Ip; lockout at its defaults
# (100 failures per address in 15 min), so after the first 100 the flood is refused with
# 429 before any bcrypt (the address is locked first). The victim, user5 (bcrypt 5) from another address, paced at
# VICTIM_CONNECTIONS connections x 10 ms, is measured alone and then during the flood
# (FLOOD_CONNECTIONS paced connections, about 2,000 requests/s; the rate reached is printed).
to_ms() { awk '{v = $1; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; printf "%.2f", v}' <<<"$1"; }
flood_scenario() {
  local port victim flood base_p99 flood_p99 flood_rps flood_non2xx
  port=$(free_port); ADDR="127.0.0.1:$port"
  write_config ec 10 "" "$port"
  sed -i 's|^server:|server:\n  real_ip_header: X-Real-Ip|' "$work/config.yml"
  start_server
  {
    printf 'wrk.headers["Authorization"] = "Basic %s"\n' "$(printf 'user5:benchpw' | base64 -w0)"
    printf 'wrk.headers["X-Real-Ip"] = "10.1.0.1"\ndelay = function() return 10 end\n'
  } > "$work/victim.lua"
  {
    printf 'wrk.headers["Authorization"] = "Basic %s"\n' "$(printf 'nobody:wrong' | base64 -w0)"
    printf 'wrk.headers["X-Real-Ip"] = "10.9.9.9"\ndelay = function() return 1 end\n'
  } > "$work/flood.lua"
  victim() { wrk -t1 -c"${VICTIM_CONNECTIONS:-4}" -d"${DURATION}s" --latency -s "$work/victim.lua" "http://$ADDR$SCENARIO_URL"; }
  # Lock the address first: before the lock each failed login is a (decoy) bcrypt job that
  # waits its turn in the queue behind the victim's, which throttles the flood by itself
  # (7 requests/s in the first run); the steady state of a flood is the locked address.
  for _ in $(seq 110); do
    curl -s -o /dev/null -u nobody:wrong -H "X-Real-Ip: 10.9.9.9" "http://$ADDR$SCENARIO_URL"
  done
  victim_out=$(victim)
  base_p99=$(to_ms "$(wrk_pct "$victim_out" 99%)")
  wrk -t1 -c"${FLOOD_CONNECTIONS:-3}" -d"$((DURATION + 2))s" --latency -s "$work/flood.lua" "http://$ADDR$SCENARIO_URL" > "$work/flood.out" &
  flood=$!
  sleep 1
  victim_out=$(victim)
  wait "$flood"
  flood_p99=$(to_ms "$(wrk_pct "$victim_out" 99%)")
  flood_rps=$(wrk_rps "$(cat "$work/flood.out")")
  flood_non2xx=$(wrk_non2xx "$(cat "$work/flood.out")")
  local locked; locked=$(curl -s "http://$ADDR/metrics" | awk '/^registry_auth_lockout_refused_total\{scope="ip"\}/ {print $2}')
  stop_server
  printf '\n%-34s flood %.0f req/s (%s non-2xx, %s refused 429 by lockout); victim %.0f req/s, p99 %s ms alone, %s ms during the flood: %s ms\n' \
    "S11 failed-login flood, one IP" "$flood_rps" "$flood_non2xx" "${locked:-0}" "$(wrk_rps "$victim_out")" "$base_p99" "$flood_p99" \
    "$(awk -v a="$base_p99" -v b="$flood_p99" 'BEGIN {printf "%+.2f", b - a}')"
}
want S11 && flood_scenario

# S12 beside S5 (same key, ACL and scope): a CI job's OIDC token as the password
# (ci_token_auth, RS256 like GitHub Actions, keys from a jwks_file so that the run measures
# verification, not the issuer). Target: >= 60 % of S5's tokens/s.
ci_scenario() { # name
  local name=$1 port token
  port=$(free_port); ADDR="127.0.0.1:$port"
  write_config ec 10 "" "$port"
  token=$($TOOL ci-token https://ci.bench.example registry "$work/ci_jwks.json")
  printf 'ci_token_auth:\n  issuers:\n    - issuer: https://ci.bench.example\n      audience: registry\n' >> "$work/config.yml"
  printf '      jwks_file: "%s/ci_jwks.json"\n      required_claims: {repository_owner: bench}\n' "$work" >> "$work/config.yml"
  printf '      account: "gha:${claims.repository}"\n      labels: {repo: "${claims.repository}"}\n' >> "$work/config.yml"
  start_server
  lua_header "ci:$token"
  warm_up "$SCENARIO_URL"
  run_wrk "$SCENARIO_URL"
  stop_server
  printf '%-34s %9.0f %8s %8s %6s %8s %9s %9s %8.0f%% of S5\n' "$name" "$RPS" "$P50" "$P99" "$NON2XX" "$CPU_US" - - \
    "$(awk -v r="$RPS" -v s="$S5_RPS" 'BEGIN {print 100 * r / s}')"
}

want S12 && ci_scenario "S12 CI OIDC token (RS256), EC"

# S13/S14 beside S5 (same key, ACL, scope, bcrypt cost 5): a web sign-in's generated
# password (issue 13). The record is docker_auth's t:<account> JSON (valid_until far ahead,
# so the provider, a closed loopback port, is never asked). S13: the embedded store, seeded
# the way a docker_auth user's records arrive, by importing a level_token_db (written with
# Debian's python3-plyvel); S14: a Redis store seeded with redis-cli, as docker_auth's
# redis_token_db holds it. Each login reads the record from the store; the bcrypt is served
# by the verified-credential cache, as in S5. Target: >= 90 % of S5's tokens/s. S14 is also
# given as a fraction of S5r (S5 on a Redis store): the round trip every login on Redis pays.
web_scenario() { # name engine(embedded|redis)
  local name=$1 engine=$2 port record
  port=$(free_port); ADDR="127.0.0.1:$port"
  write_config ec 10 "" "$port"
  record=$(web_signin_record "$hash5")
  printf 'oidc_auth:\n  issuer: "http://127.0.0.1:%s"\n  redirect_url: "http://%s/oidc_auth"\n' "$(free_port)" "$ADDR" >> "$work/config.yml"
  printf '  client_id: bench\n  client_secret: bench\n' >> "$work/config.yml"
  rm -rf "$work/data" "$work/tokens.ldb"
  if [ "$engine" = redis ]; then
    start_redis
    redis-cli -p "${REDIS_ADDR##*:}" SET 't:web@bench.example' "$record" >/dev/null
    printf 'store:\n  redis:\n    addr: "%s"\n' "$REDIS_ADDR" >> "$work/config.yml"
  else
    printf '{"web@bench.example": %s}' "$record" | /usr/bin/python3 tests/leveldb/write_token_db.py "$work/tokens.ldb"
    printf '  level_token_db:\n    path: "%s/tokens.ldb"\n    mode: import\n' "$work" >> "$work/config.yml"
    printf 'store:\n  path: "%s/data"\n' "$work" >> "$work/config.yml"
  fi
  start_server
  lua_header 'web@bench.example:benchpw'
  warm_up "$SCENARIO_URL"
  run_wrk "$SCENARIO_URL"
  stop_server
  [ "$engine" = redis ] && stop_redis
  local of_s5r=""
  [ "$engine" = redis ] && of_s5r=$(awk -v r="$RPS" -v s="$S5R_RPS" 'BEGIN {printf ", %.0f%% of S5r", 100 * r / s}')
  printf '%-34s %9.0f %8s %8s %6s %8s %9s %9s %8.0f%% of S5%s\n' "$name" "$RPS" "$P50" "$P99" "$NON2XX" "$CPU_US" - - \
    "$(awk -v r="$RPS" -v s="$S5_RPS" 'BEGIN {print 100 * r / s}')" "$of_s5r"
}

want S13 && web_scenario "S13 web sign-in password, embedded" embedded
# S5r: S5's login with a Redis store, whose lockout counters are then read from Redis (one
# MGET per login): the baseline of S14, which pays that round trip and nothing more.
if want S14; then
  stored_scenario "S5r user bcrypt 5, Redis store, EC" redis user
  S5R_RPS=$RPS
fi
want S14 && web_scenario "S14 web sign-in password, Redis" redis

# HTTPS: the listener gets the EC P-256 pair too. wrk's OpenSSL client never offers a
# session again, so `Connection: close` is a full handshake per token; the resumed case is
# `openssl s_time -reuse` (one connection at a time, each resuming the first session).
tls_cpu() { # command... → sets TLS_CPU_US from the server's CPU over the tokens it served
  local ticks0 ticks1 issued0 issued1
  ticks0=$(cpu_ticks)
  issued0=$(grep -c 'token issued' "$work/log/server.log" || true)
  "$@" > "$work/tls.out" 2>&1 || true
  ticks1=$(cpu_ticks)
  issued1=$(grep -c 'token issued' "$work/log/server.log" || true)
  TLS_TOKENS=$((issued1 - issued0))
  TLS_CPU_US=$(awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" -v r="$TLS_TOKENS" 'BEGIN {printf "%.0f", (r > 0 ? t / hz * 1e6 / r : 0)}')
}
tls_row() { printf '%-44s %9s %8s %10s\n' "$@"; }

want H || exit 0
port=$(free_port); ADDR="127.0.0.1:$port"; SCHEME=https
write_config ec 10 "" "$port"
sed -i "s|^server:|server:\n  certificate: \"$work/ec.pem\"\n  key: \"$work/ec.key\"|" "$work/config.yml"
start_server
printf '\n%-44s %9s %8s %10s\n' "HTTPS scenario (EC P-256 cert, anonymous ES256)" tokens/s p99 cpu_us/tok
printf '' > "$work/req.lua"
run_wrk "$SCENARIO_URL"
tls_row "H1 keep-alive, wrk -t$THREADS -c$CONNECTIONS" "$(printf '%.0f' "$RPS")" "$P99" "$CPU_US"
printf 'wrk.headers["Connection"] = "close"\n' > "$work/req.lua"
run_wrk "$SCENARIO_URL"
tls_row "H2 new connection per token (full handshake)" "$(printf '%.0f' "$RPS")" "$P99" "$CPU_US"
tls_cpu openssl s_time -connect "$ADDR" -www "$SCENARIO_URL" -new -time "$DURATION"
tls_row "H3 s_time -new (full handshake, 1 client)" "$(awk -v n="$TLS_TOKENS" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}')" - "$TLS_CPU_US"
tls_cpu openssl s_time -connect "$ADDR" -www "$SCENARIO_URL" -reuse -time "$DURATION"
tls_row "H4 s_time -reuse (resumed session, 1 client)" "$(awk -v n="$TLS_TOKENS" -v d="$DURATION" 'BEGIN {printf "%.0f", n / d}')" - "$TLS_CPU_US"
stop_server
