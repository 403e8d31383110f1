#!/usr/bin/env bash
# Console render benchmark (issue 14 item 7): My access and Repositories with 5,000
# repositories in the real registry (docker-registry 2.8.2). One image is pushed with
# skopeo; the other repositories are hard-linked copies of its repository directory in the
# registry's filesystem storage (the catalog walks that storage), and the script checks
# the catalog lists them all. The release binary serves the console with a 60-entry ACL;
# a signed-in session GETs each page RUNS times (curl's total time, loopback) and the
# script prints min / median / p95 / max in ms, plus the first (cold) request, which walks
# the catalog (5 pages of 1,000) before the reader's 10 s cache holds it.
#
#   bench/console.sh            # 5,000 repositories, 30 runs per page
#   REPOS=20000 RUNS=50 bench/console.sh
#   BIN=/tmp/old/registry-auth bench/console.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPOS=${REPOS:-5000}
RUNS=${RUNS:-30}
for program in docker-registry skopeo curl openssl python3; do
  command -v "$program" >/dev/null || scripts/install-deps.sh
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin registry-auth
  BIN=${CARGO_TARGET_DIR:-target}/release/registry-auth
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # $1 URL, $2 status wanted
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = "$2" ] && return 0
    sleep 0.05
  done
  echo "no $2 from $1 within 30 s" >&2
  exit 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ec.key" -out "$work/ec.pem" \
  -days 30 -subj /CN=bench 2>/dev/null
data="$work/registry-data"
mkdir -p "$data" "$work/home" "$work/tmp"
registry_port=$(free_port)
auth_port=$(free_port)

registry_config() { # $1 = with token auth (1) or without (0)
  cat <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: "$data"}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:$registry_port", secret: bench}
YAML
  if [ "$1" = 1 ]; then
    printf 'auth:\n  token:\n    realm: "http://127.0.0.1:%s/auth"\n    service: "registry.bench"\n' "$auth_port"
    printf '    issuer: "bench"\n    rootcertbundle: "%s/ec.pem"\n' "$work"
  fi
}
start_registry() { # $1 as registry_config
  registry_config "$1" > "$work/registry.yml"
  env -u REGISTRY_HTTP_ADDR OTEL_TRACES_EXPORTER=none docker-registry serve "$work/registry.yml" \
    >"$work/registry.log" 2>&1 &
  registry_pid=$!
  pids+=("$registry_pid")
  wait_http "http://127.0.0.1:$registry_port/v2/" "$([ "$1" = 1 ] && echo 401 || echo 200)"
}

# One small OCI image, pushed once.
python3 - "$work/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
os.makedirs(f"{root}/blobs/sha256")
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    open(f"{root}/blobs/sha256/{digest}", "wb").write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
tar_bytes = io.BytesIO()
with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
    content = b"console bench\n"
    info = tarfile.TarInfo("hello.txt"); info.size = len(content); info.mtime = 0
    tar.addfile(info, io.BytesIO(content))
raw = tar_bytes.getvalue()
layer = blob(gzip.compress(raw, mtime=0)) | {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z", "config": {},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [layer]}).encode())
manifest |= {"mediaType": "application/vnd.oci.image.manifest.v1+json", "annotations": {"org.opencontainers.image.ref.name": "v1"}}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(f"{root}/index.json", "w"))
open(f"{root}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
start_registry 0
printf '{"default":[{"type":"insecureAcceptAnything"}]}' > "$work/policy.json"
HOME="$work/home" TMPDIR="$work/tmp" skopeo --policy "$work/policy.json" copy --quiet --dest-tls-verify=false \
  "oci:$work/layout:v1" "docker://127.0.0.1:$registry_port/team0/app0:v1"
kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true

# The other repositories: hard-linked copies of team0/app0's links (_manifests, _layers).
repos="$data/docker/registry/v2/repositories"
started=$(date +%s.%N)
for ((i = 1; i < REPOS; i++)); do
  team=$((i % 50))
  mkdir -p "$repos/team$team"
  cp -al "$repos/team0/app0" "$repos/team$team/app$i"
done
printf 'laid out %d repositories in %.1f s\n' "$REPOS" "$(echo "$(date +%s.%N) - $started" | bc)"

start_registry 1
hash=$("$BIN" hash-password --cost 5 --password benchpw)
cat > "$work/config.yml" <<YAML
server:
  addr: "127.0.0.1:$auth_port"
token:
  issuer: "bench"
  expiration: 900
  certificate: "$work/ec.pem"
  key: "$work/ec.key"
store:
  path: "$work/store"
console:
  registry_url: "http://127.0.0.1:$registry_port"
users:
  "alice":
    password: "$hash"
    labels: {team: ["team7"]}
acl:
YAML
for ((i = 0; i < 57; i++)); do
  printf '  - match: {account: "svc-%d", name: "team%d/*"}\n    actions: ["pull", "push"]\n' "$i" "$((i % 50))" >> "$work/config.yml"
done
cat >> "$work/config.yml" <<'YAML'
  - match: {name: "${labels:team}/*"}
    actions: ["pull", "push"]
    comment: "own team"
  - match: {account: "/.+/", name: "/team[0-4]/.+/"}
    actions: ["pull"]
    comment: "shared teams"
  - match: {name: "team1*/*"}
    actions: []
    comment: "nobody else"
YAML
"$BIN" serve "$work/config.yml" 2>"$work/server.log" &
pids+=("$!")
base="http://127.0.0.1:$auth_port/console"
wait_http "$base/signin" 200

# Sign in as a browser would: the form's CSRF field, the binding cookie, then the session.
jar="$work/cookies"
csrf=$(curl -s -c "$jar" -b "$jar" "$base/signin" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
status=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" --data-urlencode "username=alice" \
  --data-urlencode "password=benchpw" --data-urlencode "csrf=$csrf" "$base/signin")
[ "$status" = 303 ] || { echo "sign-in answered $status" >&2; cat "$work/server.log" >&2; exit 1; }

measure() { # $1 label, $2 path; prints a row
  local url="$base$2" first times
  first=$(curl -s -b "$jar" -o "$work/page.html" -w '%{http_code} %{time_total}' "$url")
  [ "${first%% *}" = 200 ] || { echo "$2 answered ${first%% *}" >&2; cat "$work/page.html" >&2; exit 1; }
  times=$(for _ in $(seq "$RUNS"); do curl -s -b "$jar" -o /dev/null -w '%{time_total}\n' "$url"; done)
  python3 - "$1" "${first##* }" <<PY
import statistics, sys
label, first = sys.argv[1], float(sys.argv[2]) * 1000
t = sorted(float(x) * 1000 for x in """$times""".split())
p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]
print(f"{label:<34} first {first:7.1f}   min {t[0]:6.1f}   median {statistics.median(t):6.1f}   p95 {p95:6.1f}   max {t[-1]:6.1f}  ms")
PY
}

# The catalog must really list every repository.
measure "My access (cold catalog)" "/access" >/dev/null
listed=$(sed -n 's/.*id="repository-count">\([0-9]*\)<.*/\1/p' "$work/page.html")
[ "$listed" = "$REPOS" ] || { echo "the catalog lists ${listed:-nothing}, not $REPOS repositories" >&2; exit 1; }
echo "catalog lists $listed repositories; $RUNS runs per page, signed in as alice; load $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 11 # let the catalog cache lapse so the first request of each row walks the registry again
measure "My access /access" "/access"
measure "My access, filter ?q=app49&action=push" "/access?q=app49&action=push"
measure "My access, page 20" "/access?page=20"
measure "Repositories /repositories" "/repositories"
measure "Repositories, search ?q=app12" "/repositories?q=app12"
measure "Tags of team7/app7" "/repositories/team7/app7"
measure "Tag team7/app7:v1" "/repositories/team7/app7:v1"
