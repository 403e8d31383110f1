#!/usr/bin/env bash
# Installs the real programs the test suite runs against (no mocks):
# Debian packages, the PyPI package secantusdb, and the registry 3.x binaries
# (distribution v3.0.0 and v3.1.1) in target/peers, and the npm packages of
# tests/oidc-provider (oidc-provider, pinned by its package-lock.json); python3-plyvel for
# Debian's /usr/bin/python3 (tests/leveldb/write_token_db.py).
# Idempotent: anything already present is skipped, so a second run takes ~1 s.
set -euo pipefail

# command-or-file that proves the package is present | Debian package
APT_COMPONENTS=(
  "docker-registry|docker-registry"
  "skopeo|skopeo"
  "umoci|umoci"
  "slapd|slapd"
  "ldapsearch|ldap-utils"
  "redis-server|redis-server"
  "/usr/lib/postgresql|postgresql"
  "mariadbd|mariadb-server"
  "wrk|wrk"
  "ctr|containerd"
  "pebble-challtestsrv|pebble"
  "systemd-analyze|systemd"
  "/etc/ssl/certs/ca-certificates.crt|ca-certificates"
  "openssl|openssl"
  # aws-lc-sys compiles AWS-LC from C (and x86-64 assembly) with the cc crate; no cmake.
  "cc|gcc"
  # Web sign-in tests: a real browser through WebDriver, and npm oidc-provider on node.
  "chromium|chromium"
  "chromedriver|chromium-driver"
  "node|nodejs"
  # level_token_db tests: a real LevelDB writer (libleveldb, snappy tables) for Debian's
  # /usr/bin/python3, and flock(1) to hold a LevelDB lock as docker_auth's goleveldb does.
  "/usr/lib/python3/dist-packages/plyvel|python3-plyvel"
  "flock|util-linux"
  # The console's blob-redirect tests: tests/storage-server/serve.py (standard library only).
  "python3|python3"
)
PYPI_PACKAGE=secantusdb
PYPI_COMMAND=secantusd-py
APT_LISTS=/var/lib/apt/lists
POLICY_RC=/usr/sbin/policy-rc.d

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available"
  SUDO=(sudo)
fi
as_root() { "${SUDO[@]}" "$@"; }

# slapd lives in /usr/sbin, which a non-root PATH may lack.
present() {
  local probe=$1
  if [[ $probe == /* ]]; then
    [[ -e $probe ]]
  else
    command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe ]]
  fi
}

apt_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing_packages() {
  local entry probe pkg
  for entry in "${APT_COMPONENTS[@]}"; do
    probe=${entry%%|*}
    pkg=${entry##*|}
    if ! present "$probe" || ! apt_installed "$pkg"; then
      printf '%s\n' "$pkg"
    fi
  done
}

lists_need_update() {
  local pkg candidate
  # Empty lists: apt knows no package at all.
  if ! compgen -G "$APT_LISTS/*_Packages*" >/dev/null; then
    return 0
  fi
  # Stale lists: mirrors drop superseded .debs, so old lists yield 404s.
  if [[ -z $(find "$APT_LISTS" -maxdepth 1 -name '*Release' -cmin -1440 -print -quit) ]]; then
    return 0
  fi
  for pkg in "$@"; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z $candidate || $candidate == "(none)" ]]; then
      return 0
    fi
  done
  return 1
}

apt_update() {
  log "apt-get update"
  as_root apt-get update -qq || die "apt-get update failed"
  UPDATED=1
}

# apt/dpkg chatter goes to a log that is shown only when the install fails.
apt_install() {
  local out
  out=$(mktemp)
  if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@" >"$out" 2>&1; then
    rm -f "$out"
  else
    cat "$out" >&2
    rm -f "$out"
    return 1
  fi
}

# Package postinst scripts must not start system daemons (slapd, redis, postgres, mariadb) that
# would outlive this script; tests start their own instances on free ports.
TEMP_POLICY=0
block_service_starts() {
  if [[ ! -e $POLICY_RC ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 755 "$POLICY_RC"
    TEMP_POLICY=1
  fi
}
restore_service_starts() {
  if [[ $TEMP_POLICY -eq 1 ]]; then
    as_root rm -f "$POLICY_RC"
    TEMP_POLICY=0
  fi
}

stop_system_slapd() {
  local pidfile pid
  for pidfile in /run/slapd/slapd.pid /var/run/slapd/slapd.pid; do
    [[ -r $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      log "stopping system slapd (pid $pid)"
      if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        as_root systemctl stop slapd || true
        as_root systemctl disable slapd >/dev/null 2>&1 || true
      else
        as_root invoke-rc.d slapd stop >/dev/null 2>&1 || as_root kill "$pid" || true
      fi
    fi
  done
}

install_apt_packages() {
  local -a missing
  mapfile -t missing < <(missing_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  log "installing: ${missing[*]}"
  UPDATED=0
  if lists_need_update "${missing[@]}"; then
    apt_update
  fi
  # slapd must not create a system database (tests build their own).
  echo "slapd slapd/no_configuration boolean true" | as_root debconf-set-selections
  block_service_starts
  trap restore_service_starts EXIT
  if ! apt_install "${missing[@]}"; then
    # The lists looked fresh but may still point at removed .debs.
    [[ $UPDATED -eq 0 ]] || die "apt-get install failed: ${missing[*]}"
    apt_update
    apt_install "${missing[@]}" || die "apt-get install failed: ${missing[*]}"
  fi
  restore_service_starts
  trap - EXIT
  stop_system_slapd
}

pypi_scripts_dir() {
  python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'
}

install_pypi_package() {
  if command -v "$PYPI_COMMAND" >/dev/null 2>&1; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is required for $PYPI_PACKAGE"
  log "installing PyPI $PYPI_PACKAGE"
  python3 -m pip install --quiet "$PYPI_PACKAGE" || die "pip install $PYPI_PACKAGE failed"
  # pyenv exposes new console scripts only after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
  hash -r
  if ! command -v "$PYPI_COMMAND" >/dev/null 2>&1 &&
    [[ ! -x "$(pypi_scripts_dir)/$PYPI_COMMAND" ]]; then
    die "$PYPI_COMMAND not found after installing $PYPI_PACKAGE"
  fi
}

# The OpenID provider of the web sign-in tests: `npm ci` installs exactly the lock file's
# versions into tests/oidc-provider/node_modules; skipped when that install is current.
install_oidc_provider() {
  local dir=$REPO_ROOT/tests/oidc-provider
  if [[ -f $dir/node_modules/.package-lock.json && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
    return 0
  fi
  # Debian ships npm as its own package; NodeSource's nodejs carries it inside.
  if ! command -v npm >/dev/null 2>&1; then
    log "installing: npm"
    UPDATED=0
    if lists_need_update npm; then apt_update; fi
    apt_install npm || die "apt-get install failed: npm"
  fi
  log "npm ci in tests/oidc-provider"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in tests/oidc-provider failed"
}

verify_and_report() {
  local entry probe pkg failed=0 pypi_version
  for entry in "${APT_COMPONENTS[@]}"; do
    probe=${entry%%|*}
    pkg=${entry##*|}
    if present "$probe" && apt_installed "$pkg"; then
      printf '%-16s %s\n' "$pkg" "$(dpkg-query -W -f='${Version}' "$pkg")"
    else
      printf '%-16s MISSING\n' "$pkg"
      failed=1
    fi
  done
  # importlib.metadata answers in ~50 ms where `pip show` takes a second.
  pypi_version=$(python3 -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
    "$PYPI_PACKAGE" 2>/dev/null || true)
  if [[ -n $pypi_version ]]; then
    printf '%-16s %s (pypi)\n' "$PYPI_PACKAGE" "$pypi_version"
  else
    printf '%-16s MISSING\n' "$PYPI_PACKAGE"
    failed=1
  fi
  [[ $failed -eq 0 ]] || die "some components are missing"
}

# Registry 3.x: no package registry here provides it. Unpacked from ../shared/peers (its
# README lists each binary's sha256) into target/peers, never into the source tree; on a
# machine without it, built from distribution's tagged source with Go (needs the public Go
# module proxy). The tests look in target/peers (or REGISTRY3_BIN / REGISTRY30_BIN).
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_TARGET=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/peers
REGISTRY3_VERSIONS=(
  "v3.1.1|5a6d9881332deb61675f4804eb4d03c94a3643f635b7542a52bdde3ef4c9d214"
  "v3.0.0|5cd9684d1755daecbcb266bd89bbf37972fbd109e42b1a3edb00126994aecc14"
)
# The variable that names a binary of each version instead (the tests honour it too).
registry3_override() { [[ $1 == v3.0.0 ]] && printf '%s' "${REGISTRY30_BIN:-}" || printf '%s' "${REGISTRY3_BIN:-}"; }

# The nearest shared/peers folder above the repository (../shared/peers for /work/main).
peers_source() {
  local dir=$REPO_ROOT
  while [[ $dir != / ]]; do
    dir=$(dirname "$dir")
    if [[ -d $dir/shared/peers ]]; then
      printf '%s\n' "$dir/shared/peers"
      return 0
    fi
  done
  return 1
}

sha256_of() { sha256sum "$1" | awk '{print $1}'; }

install_registry3() {
  local entry version sum dest tmp peers_dir gobin
  mkdir -p "$PEERS_TARGET"
  for entry in "${REGISTRY3_VERSIONS[@]}"; do
    version=${entry%%|*}
    sum=${entry##*|}
    dest=$PEERS_TARGET/registry-$version
    if [[ -n $(registry3_override "$version") ]]; then
      [[ -x $(registry3_override "$version") ]] || die "registry $version: $(registry3_override "$version") is not executable"
      continue
    fi
    if [[ -x $dest && $(sha256_of "$dest") == "$sum" ]]; then
      continue
    fi
    tmp=$(mktemp "$PEERS_TARGET/.registry-$version.XXXXXX")
    if peers_dir=$(peers_source) && [[ -r $peers_dir/registry-$version.gz ]]; then
      log "unpacking $peers_dir/registry-$version.gz into $dest"
      gunzip -c "$peers_dir/registry-$version.gz" >"$tmp" || die "cannot unpack registry-$version.gz"
      [[ $(sha256_of "$tmp") == "$sum" ]] || { rm -f "$tmp"; die "registry-$version: sha256 mismatch (expected $sum)"; }
    elif command -v go >/dev/null 2>&1; then
      log "building registry $version with go install (needs the Go module proxy)"
      gobin=$(mktemp -d)
      GOBIN=$gobin CGO_ENABLED=0 go install "github.com/distribution/distribution/v3/cmd/registry@$version" ||
        { rm -rf "$gobin" "$tmp"; die "go install registry@$version failed"; }
      mv "$gobin/registry" "$tmp"
      rm -rf "$gobin"
    else
      rm -f "$tmp"
      die "registry $version: no shared/peers/registry-$version.gz above $REPO_ROOT and no go to build it; set REGISTRY3_BIN / REGISTRY30_BIN to a registry binary"
    fi
    chmod 755 "$tmp"
    mv "$tmp" "$dest"
  done
}

install_apt_packages
install_pypi_package
install_registry3
install_oidc_provider
verify_and_report
for entry in "${REGISTRY3_VERSIONS[@]}"; do
  version=${entry%%|*}
  override=$(registry3_override "$version")
  printf '%-16s %s\n' "registry-$version" "${override:-$PEERS_TARGET/registry-$version}"
done
