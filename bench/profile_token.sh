#!/usr/bin/env bash
# Instructions per ES256 token (issue 16 item 2, issue 12 item 6), counted by callgrind: unlike
# wall-clock or /proc CPU time, the count does not depend on what else the machine runs
# (user space only: the kernel's share of read/write/epoll is not in it). The release
# server runs under valgrind; a keep-alive client sends WARMUP requests, the counters are
# zeroed, then REQUESTS more are sent and the counters dumped: total / REQUESTS is the
# cost of one token, everything included (HTTP parsing, authz, signing, the audit line,
# the response write). Prints that figure and the top of the profile (inclusive costs).
#
# SCENARIO picks the request, as in bench/run.sh: `anon` (S4, the default), `user` (S5: a
# bcrypt-5 user, served from the credential cache after the first login), `robot` (S10: a
# robot's Basic login, embedded store), `refresh` (S8: the identity-token refresh grant,
# embedded store), `refresh-redis` (S9: the same on a private redis-server; only our
# process is counted, not redis-server), `web` (S13: a web sign-in's generated password,
# docker_auth's `t:<account>` record imported from a level_token_db into the embedded
# store), `web-redis` (S14: the same record in Redis). KEY=rsa signs with an RSA-2048 key instead of EC
# P-256: `anon` is then S1, `user` S2.
#
#   bench/profile_token.sh                  # 2,000 tokens
#   SCENARIO=robot bench/profile_token.sh
#   KEY=rsa SCENARIO=user bench/profile_token.sh   # S2
#   REQUESTS=500 bench/profile_token.sh
#   KEEP=1 bench/profile_token.sh           # keep the callgrind output (path printed)
#   BIN=/tmp/old/registry-auth bench/profile_token.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
SCENARIO=${SCENARIO:-anon}
KEY=${KEY:-ec}
command -v valgrind >/dev/null || scripts/install-deps.sh
if [ -z "${BIN:-}" ]; then   # BIN=... profiles a given binary
  cargo build --release --quiet --bin registry-auth
  BIN=target/release/registry-auth
fi

work=$(mktemp -d)
vg_pid=""
redis_pid=""
cleanup() {
  [ -n "$vg_pid" ] && kill "$vg_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
case $KEY in
  ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa) newkey=(-newkey rsa:2048) ;;
  *) echo "unknown KEY $KEY (ec, rsa)" >&2; exit 2 ;;
esac
openssl req -x509 "${newkey[@]}" -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 30 -subj /CN=bench 2>/dev/null
port=$(free_port)
mkdir -p "$work/log"
hash5=$("$BIN" hash-password --cost 5 --password benchpw)
# The bench's S4/S5 config (S1/S2 with KEY=rsa): anonymous pull and push on one repository, 10 ACL entries.
cat > "$work/config.yml" <<EOF
server:
  addr: "127.0.0.1:$port"
token:
  issuer: "bench"
  expiration: 900
  certificate: "$work/cert.pem"
  key: "$work/key.pem"
users:
  "": {}
  "user5":
    password: "$hash5"
acl:
$(for i in $(seq 0 8); do printf '  - match: {account: "team%d-*", name: "team%d/*"}\n    actions: ["pull", "push"]\n' "$i" "$i"; done)
  - match: {type: "repository"}
    actions: ["pull", "push"]
EOF
start_redis() {
  redis_port=$(free_port)
  mkdir -p "$work/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no >"$work/log/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  printf 'store:\n  redis:\n    addr: "127.0.0.1:%s"\n' "$redis_port" >> "$work/config.yml"
}
# S13/S14 as bench/run.sh seeds them: valid_until far ahead, so the provider (a closed
# loopback port) is never asked.
web_config() {
  printf 'oidc_auth:\n  issuer: "http://127.0.0.1:%s"\n  redirect_url: "http://127.0.0.1:%s/oidc_auth"\n' "$(free_port)" "$port" >> "$work/config.yml"
  printf '  client_id: bench\n  client_secret: bench\n' >> "$work/config.yml"
  record=$(printf '{"token_type":"Bearer","access_token":"bench","valid_until":"2099-01-01T00:00:00Z","docker_password":"%s","labels":{"groups":["bench"]}}' "$hash5")
}
case $SCENARIO in
  anon | user) ;;
  robot | refresh) printf 'store:\n  path: "%s/data"\n' "$work" >> "$work/config.yml" ;;
  refresh-redis) start_redis ;;
  web)
    web_config
    printf '{"web@bench.example": %s}' "$record" | /usr/bin/python3 tests/leveldb/write_token_db.py "$work/tokens.ldb"
    printf '  level_token_db:\n    path: "%s/tokens.ldb"\n    mode: import\n' "$work" >> "$work/config.yml"
    printf 'store:\n  path: "%s/data"\n' "$work" >> "$work/config.yml"
    ;;
  web-redis)
    web_config
    start_redis
    redis-cli -p "$redis_port" SET 't:web@bench.example' "$record" >/dev/null
    ;;
  *) echo "unknown SCENARIO $SCENARIO (anon, user, robot, refresh, refresh-redis, web, web-redis)" >&2; exit 2 ;;
esac

valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$BIN" serve "$work/config.yml" \
  2>"$work/log/server.log" &
vg_pid=$!

# send N: N keep-alive token requests of the scenario on one connection, each checked for
# a 200 (CREDENTIAL: the robot's `robot$NAME:SECRET`, or the refresh token).
CREDENTIAL=""
send() {
  python3 - "$port" "$1" "$SCENARIO" "$CREDENTIAL" <<'EOF'
import base64, http.client, sys, time
port, n, scenario, credential = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
for _ in range(600):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/")
        conn.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the server did not answer")
if n == 0:
    sys.exit(0)
method, path, headers, body = "GET", "/auth?service=registry&scope=repository:bench/app:pull,push", {}, None
basic = lambda text: {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}
if scenario == "user":
    headers = basic("user5:benchpw")
elif scenario.startswith("web"):
    headers = basic("web@bench.example:benchpw")
elif scenario == "robot":
    headers = basic(credential)
elif scenario.startswith("refresh"):
    method, path = "POST", "/auth"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = ("grant_type=refresh_token&refresh_token=" + credential
            + "&client_id=bench&service=registry&scope=repository:bench/app:pull,push")
for _ in range(n):
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
EOF
}

case $SCENARIO in
  robot)
    send 0
    secret=$("$BIN" robot create bench --scope 'repository:bench/*:pull,push' --config "$work/config.yml" | awk '/^secret:/ {print $2}')
    CREDENTIAL="robot\$bench:$secret"
    ;;
  refresh*)
    send 0
    CREDENTIAL=$(curl -s -u user5:benchpw "http://127.0.0.1:$port/auth?service=registry&offline_token=true&client_id=bench" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    ;;
esac

send "$WARMUP"
callgrind_control -z "$vg_pid" >/dev/null
send "$REQUESTS"
callgrind_control -d "$vg_pid" >/dev/null
kill "$vg_pid"; wait "$vg_pid" 2>/dev/null || true; vg_pid=""

# The dump after zeroing is the one with the highest number.
dump=$(ls -v "$work"/callgrind.out.* | tail -1)
total=$(awk '/^summary:/ {print $2}' "$dump")
tokens=$(grep -c 'token issued' "$work/log/server.log" || true)
printf 'registry-auth %s, %s, SCENARIO=%s KEY=%s: %s instructions over %d tokens = %.0f instructions per token (%d tokens issued in all, warm-up included)\n' \
  "$(git describe --always --dirty 2>/dev/null || echo '?')" "$(date -u +%Y-%m-%dT%H:%MZ)" "$SCENARIO" "$KEY" "$total" "$REQUESTS" \
  "$(awk -v t="$total" -v n="$REQUESTS" 'BEGIN {print t / n}')" "$tokens"
# Inclusive cost of the functions on a token's path (the call tree's top), then the same
# list without the signature's internals: what is around the signature.
annotate() { callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null | sed -n '/file:function/,$p' || true; }
printf '\n--- inclusive, top (Ir over %d tokens) ---\n' "$REQUESTS"
annotate | sed -n 3,40p | cut -c1-160
printf '\n--- inclusive, outside the signature ---\n'
annotate | grep -v 'aws_lc\|ecp_nistz\|ecdsa\|pkey_ec\|bn_\|sha256\|EVP' | sed -n 24,80p | cut -c1-160
[ -n "${KEEP:-}" ] && echo "callgrind output: $dump"
exit 0
