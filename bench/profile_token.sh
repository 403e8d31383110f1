#!/usr/bin/env bash
# Instructions per anonymous ES256 token (issue 16 item 2), counted by callgrind: unlike
# wall-clock or /proc CPU time, the count does not depend on what else the machine runs
# (user space only: the kernel's share of read/write/epoll is not in it). The release
# server runs under valgrind; a keep-alive client sends WARMUP requests, the counters are
# zeroed, then REQUESTS more are sent and the counters dumped: total / REQUESTS is the
# cost of one token, everything included (HTTP parsing, authz, signing, the audit line,
# the response write). Prints that figure and the top of the profile (inclusive costs).
#
#   bench/profile_token.sh                  # 2,000 tokens
#   REQUESTS=500 bench/profile_token.sh
#   KEEP=1 bench/profile_token.sh           # keep the callgrind output (path printed)
#   BIN=/tmp/old/registry-auth bench/profile_token.sh
#   SCENARIO=S1 bench/profile_token.sh      # run.sh's scenarios: S4 (default) anonymous ES256,
#                                           # S1 anonymous RSA-2048, S2 user bcrypt 5 + RSA-2048,
#                                           # S5 user bcrypt 5 + EC P-256 (credential cache on)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-2000}
SCENARIO=${SCENARIO:-S4}
case "$SCENARIO" in
  S1) kind=rsa user="" ;;
  S2) kind=rsa user=user5 ;;
  S4) kind=ec user="" ;;
  S5) kind=ec user=user5 ;;
  *) echo "SCENARIO must be S1, S2, S4 or S5" >&2; exit 2 ;;
esac
WARMUP=${WARMUP:-200}
command -v valgrind >/dev/null || scripts/install-deps.sh
if [ -z "${BIN:-}" ]; then   # BIN=... profiles a given binary
  cargo build --release --quiet --bin registry-auth
  BIN=target/release/registry-auth
fi

work=$(mktemp -d)
vg_pid=""
cleanup() {
  [ -n "$vg_pid" ] && kill "$vg_pid" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

if [ "$kind" = rsa ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 30 -subj /CN=bench 2>/dev/null
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 30 -subj /CN=bench 2>/dev/null
fi
users='  "": {}'
if [ -n "$user" ]; then
  users+=$(printf '\n  "%s":\n    password: "%s"' "$user" "$(printf 'benchpw\n' | "$BIN" hash-password --cost 5 | tail -1)")
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/log"
# The bench's config: anonymous pull and push on one repository, 10 ACL entries.
cat > "$work/config.yml" <<EOF
server:
  addr: "127.0.0.1:$port"
token:
  issuer: "bench"
  expiration: 900
  certificate: "$work/cert.pem"
  key: "$work/key.pem"
users:
$(printf '%b' "$users")
acl:
$(for i in $(seq 0 8); do printf '  - match: {account: "team%d-*", name: "team%d/*"}\n    actions: ["pull", "push"]\n' "$i" "$i"; done)
  - match: {type: "repository"}
    actions: ["pull", "push"]
EOF

valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$BIN" serve "$work/config.yml" \
  2>"$work/log/server.log" &
vg_pid=$!

# send N: N keep-alive token requests on one connection, each checked for a 200.
send() {
  python3 - "$port" "$1" "$user" <<'EOF'
import base64, http.client, sys, time
port, n, user = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:benchpw".encode()).decode()} if user else {}
for _ in range(600):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/")
        conn.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
for _ in range(n):
    conn.request("GET", "/auth?service=registry&scope=repository:bench/app:pull,push", headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
EOF
}

send "$WARMUP"
callgrind_control -z "$vg_pid" >/dev/null
send "$REQUESTS"
callgrind_control -d "$vg_pid" >/dev/null
kill "$vg_pid"; wait "$vg_pid" 2>/dev/null || true; vg_pid=""

# The dump after zeroing is the one with the highest number.
dump=$(ls -v "$work"/callgrind.out.* | tail -1)
total=$(awk '/^summary:/ {print $2}' "$dump")
tokens=$(grep -c 'token issued' "$work/log/server.log" || true)
printf 'registry-auth %s, %s, %s: %s instructions over %d tokens = %.0f instructions per token (%d tokens issued in all, warm-up included)\n' \
  "$(git describe --always --dirty 2>/dev/null || echo '?')" "$SCENARIO" "$(date -u +%Y-%m-%dT%H:%MZ)" "$total" "$REQUESTS" \
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
