#!/usr/bin/env bash
# What one stored-credential token costs the machine, for comparisons that the VM's noise
# hides from bench/run.sh (its S8-S14 ratios to S5 move by 10-40 points between runs of one
# binary): for each round, binary and scenario a fresh server (and Redis), a 1 s warm-up,
# then wrk -t2 -c16 for DURATION seconds, and per request: our CPU, redis-server's CPU and
# our context switches (all threads, from /proc), beside wrk's tokens/s. Scenarios (the
# requests of bench/run.sh's rows of the same name, on one config with a one-entry ACL):
#   S5  user5 (bcrypt 5, verified-credential cache) by Basic, no store section
#   S5r the same with a Redis store (its lockout counters are read from Redis: one MGET)
#   S8  identity-token exchange (POST refresh grant), embedded store;  S9  the same, Redis
#   S10 robot login by Basic, embedded store
#   S13 web sign-in password by Basic, embedded store (record imported from a level_token_db)
#   S14 the same, Redis (record written with redis-cli)
# Each round runs the scenarios in a rotated order, the binaries alternating within each.
# With S5 among them, every other scenario runs beside an S5 run of its own (a pair, in turn
# first and second), and the end prints its tokens/s as a fraction of its pair's S5 (median
# and range over the rounds) and the median CPU figures. PAIR_WITH=S5r pairs with S5r instead
# (a Redis scenario against a login that pays the same round trip).
#
#   bench/store_cost.sh BIN [BIN...]                        # S9 S14, ROUNDS=3 DURATION=5
#   SCENARIOS="S5 S8 S9 S10 S13 S14" ROUNDS=7 bench/store_cost.sh BIN
#   PAIR_WITH=S5r SCENARIOS="S5r S9 S14" bench/store_cost.sh BIN
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: [SCENARIOS=...] bench/store_cost.sh BIN [BIN...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
read -r -a scenarios <<<"${SCENARIOS:-S9 S14}"
pair_with=${PAIR_WITH:-S5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
mkdir -p "$work/log"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=bench/common.sh
. "$here/common.sh"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ec.key" -out "$work/ec.pem" \
  -days 30 -subj /CN=bench 2>/dev/null
hash=$(printf 'benchpw\n' | "$1" hash-password --cost 5 2>/dev/null | tail -1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
engine_of() { case $1 in S5) echo none ;; S5r | S9 | S14) echo redis ;; *) echo embedded ;; esac; }

one() { # BIN scenario → one result line: scenario bin tokens/s ours_us redis_us switches non2xx
  local bin=$1 scenario=$2 engine sport redis="" server token secret url
  engine=$(engine_of "$scenario")
  sport=$(free_port)
  rm -rf "$work/data" "$work/tokens.ldb"
  {
    printf 'server:\n  addr: "127.0.0.1:%s"\ntoken:\n  issuer: "bench"\n  expiration: 900\n' "$sport"
    printf '  certificate: "%s/ec.pem"\n  key: "%s/ec.key"\n' "$work" "$work"
    printf 'users:\n  "user5":\n    password: "%s"\n' "$hash"
    printf 'acl:\n  - match: {account: "/.+/"}\n    actions: ["pull", "push"]\n'
    if [ "$scenario" = S13 ] || [ "$scenario" = S14 ]; then
      printf 'oidc_auth:\n  issuer: "http://127.0.0.1:%s"\n  redirect_url: "http://127.0.0.1:%s/oidc_auth"\n' "$(free_port)" "$sport"
      printf '  client_id: bench\n  client_secret: bench\n'
    fi
    if [ "$scenario" = S13 ]; then
      printf '{"web@bench.example": %s}' "$(web_signin_record "$hash")" |
        /usr/bin/python3 "$here/../tests/leveldb/write_token_db.py" "$work/tokens.ldb"
      printf '  level_token_db:\n    path: "%s/tokens.ldb"\n    mode: import\n' "$work"
    fi
  } >"$work/config.yml"
  case $engine in
    redis)
      start_redis
      redis=$redis_pid
      printf 'store:\n  redis:\n    addr: "%s"\n' "$REDIS_ADDR" >>"$work/config.yml"
      if [ "$scenario" = S14 ]; then
        redis-cli -p "${REDIS_ADDR##*:}" SET 't:web@bench.example' "$(web_signin_record "$hash")" >/dev/null
      fi
      ;;
    embedded) printf 'store:\n  path: "%s/data"\n' "$work" >>"$work/config.yml" ;;
  esac
  "$bin" serve "$work/config.yml" 2>"$work/log/server.log" &
  server=$!
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$sport/" && break; sleep 0.05; done
  url="http://127.0.0.1:$sport/auth"
  case $scenario in
    S8 | S9)
      token=$(curl -s -u user5:benchpw "$url?service=registry&offline_token=true&client_id=bench" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
      lua_refresh_grant "$token"
      ;;
    S10)
      secret=$("$bin" robot create bench --scope 'repository:bench/*:pull,push' --config "$work/config.yml" 2>/dev/null |
        awk '/^secret:/ {print $2}')
      lua_header "robot\$bench:$secret"
      ;;
    S5 | S5r) lua_header 'user5:benchpw' ;;
    S13 | S14) lua_header 'web@bench.example:benchpw' ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
  [ "$scenario" = S8 ] || [ "$scenario" = S9 ] || url="$url?service=registry&scope=repository:bench/app:pull,push"
  wrk -t2 -c16 -d1s -s "$work/req.lua" "$url" >/dev/null # warm-up: connections, caches
  local s0 r0=0 c0 out s1 r1=0 c1
  s0=$(cpu_ticks $server); c0=$(switches $server); [ -n "$redis" ] && r0=$(cpu_ticks "$redis")
  out=$(wrk -t2 -c16 -d"${DURATION}s" -s "$work/req.lua" "$url")
  s1=$(cpu_ticks $server); c1=$(switches $server); [ -n "$redis" ] && r1=$(cpu_ticks "$redis")
  kill "$server" $redis; wait "$server" $redis 2>/dev/null || true
  awk -v out="$out" -v s=$((s1 - s0)) -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
    -v name="$scenario $(basename "$bin")" 'BEGIN {
      n = 0; rps = 0; bad = 0; split(out, lines, "\n")
      for (i in lines) {
        if (lines[i] ~ /requests in/) { split(lines[i], f, " "); n = f[1] }
        if (lines[i] ~ /Requests\/sec/) { split(lines[i], f, " "); rps = f[2] }
        if (lines[i] ~ /Non-2xx/) { split(lines[i], f, " "); bad = f[5] }
      }
      printf "%s %.0f %.1f %.1f %.2f %d\n", name, rps, s * 1e6 / hz / n, r * 1e6 / hz / n, c / n, bad
    }'
}

printf 'store_cost: %s, rounds %s x %s s, load %s\n' "$(date -u +%H:%MZ)" "$ROUNDS" "$DURATION" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-4s %-16s %9s %8s %9s %13s\n' round scen binary tokens/s "us ours" "us redis" "switches/req"
n=${#scenarios[@]}
record() { # ROUND LINE [S5-line of the same pair]: prints the row and keeps it for the summary
  local sc b rps ours redis sw bad
  read -r sc b rps ours redis sw bad <<<"$2"
  echo "$1 $2 ${3:-}" >>"$work/results"
  printf '%-5s %-4s %-16s %9s %8s %9s %13s%s\n' "$1" "$sc" "$b" "$rps" "$ours" "$redis" "$sw" \
    "$([ "$bad" != 0 ] && echo "  $bad non-2xx")"
}
paired=false
[[ " ${scenarios[*]} " == *" $pair_with "* ]] && paired=true
others=()
for s in "${scenarios[@]}"; do [ "$s" = "$pair_with" ] && [ "$paired" = true ] || others+=("$s"); done
n=${#others[@]}
for round in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    scenario=${others[$(((i + round - 1) % n))]}
    for bin in "$@"; do
      if [ "$paired" = false ]; then
        record "$round" "$(one "$bin" "$scenario")"
        continue
      fi
      # With S5: each scenario beside its own S5 run, in turn first and second (the VM's
      # speed drifts within minutes; a pair is measured within ~15 s).
      if (((round + i) % 2)); then
        base=$(one "$bin" "$pair_with"); line=$(one "$bin" "$scenario")
      else
        line=$(one "$bin" "$scenario"); base=$(one "$bin" "$pair_with")
      fi
      record "$round" "$base"
      record "$round" "$line" "$(awk '{print $3}' <<<"$base")"
    done
  done
done
printf 'load at the end %s (%s)\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%H:%MZ)"

# Medians over the rounds; with S5, each scenario's tokens/s as a fraction of its pair's S5.
[ "$paired" = true ] || exit 0
printf '\n%-4s %-16s %22s %10s %8s %9s %13s\n' scen binary "of $pair_with median (range)" tokens/s "us ours" "us redis" "switches/req"
awk -v pair_with="$pair_with" '
  function median(list,   v, m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
  }
  { key = $2 " " $3; keys[key] = 1
    tps[key] = tps[key] " " $4; ours[key] = ours[key] " " $5; red[key] = red[key] " " $6; sw[key] = sw[key] " " $7
    if (NF >= 9 && $9 > 0) {
      x = 100 * $4 / $9; ratios[key] = ratios[key] " " x
      if (!(key in lo) || x < lo[key]) lo[key] = x
      if (!(key in hi) || x > hi[key]) hi[key] = x
    }
  }
  END {
    for (key in keys) {
      split(key, k, " ")
      share = (key in ratios) ? sprintf("%8.0f %% (%3.0f-%3.0f)", median(ratios[key]), lo[key], hi[key]) : sprintf("%22s", "(the pairs: " pair_with ")")
      printf "%-4s %-16s %s %10.0f %8.1f %9.1f %13.2f\n", k[1], k[2], share,
        median(tps[key]), median(ours[key]), median(red[key]), median(sw[key])
    }
  }' "$work/results" | sort
