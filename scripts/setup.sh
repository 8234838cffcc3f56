#!/usr/bin/env bash
# Installs what dangerzone-image's build and tests need, idempotently, on a fresh Debian machine:
#   - Deno 2.9.6 from the npm registry into ./.deno (never through the project's own package.json),
#     unless a deno 2.9.6 is already on PATH;
#   - when running as root: the Debian packages the integration tests use (podman, runc, skopeo, umoci,
#     docker-registry, apache2-utils, busybox-static, openssl, curl, jq).
# Source it (`. scripts/setup.sh`) to get DENO set and deno on PATH, or run it to just install.
set -euo pipefail

DENO_VERSION=2.9.6
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# zsh and fish: the completion tests load the generated scripts in real shells (bash is always there).
APT_PACKAGES="podman runc skopeo umoci docker-registry apache2-utils busybox-static openssl curl jq ca-certificates zsh fish"

log() { printf 'setup: %s\n' "$*" >&2; }

install_deno() {
  if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -1 | grep -q "deno $DENO_VERSION "; then
    DENO=$(command -v deno)
  elif [ -x "$ROOT/.deno/node_modules/.bin/deno" ] &&
    "$ROOT/.deno/node_modules/.bin/deno" --version | head -1 | grep -q "deno $DENO_VERSION "; then
    DENO=$ROOT/.deno/node_modules/.bin/deno
  else
    command -v npm >/dev/null 2>&1 || { log "npm is needed to install Deno $DENO_VERSION"; return 1; }
    log "installing Deno $DENO_VERSION from the npm registry into .deno/"
    mkdir -p "$ROOT/.deno"
    [ -f "$ROOT/.deno/package.json" ] || printf '{"name":"deno-toolchain","private":true}\n' >"$ROOT/.deno/package.json"
    npm install --prefix "$ROOT/.deno" --no-audit --no-fund --silent "deno@$DENO_VERSION" >&2
    DENO=$ROOT/.deno/node_modules/.bin/deno
  fi
  export DENO
  PATH="$(dirname "$DENO"):$PATH"
  export PATH
}

install_packages() {
  if [ "$(id -u)" != 0 ]; then
    log "not root: skipping Debian packages (integration tests need: $APT_PACKAGES)"
    return 0
  fi
  local missing="" p
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    log "installing Debian packages:$missing"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
  fi
}

install_packages
install_deno
# Fetch every npm dependency the lock file names now, so that no test's subprocess prints
# "Download ..." on its stderr during the first run on a fresh machine.
"$DENO" install --frozen --quiet >&2
log "using $("$DENO" --version | head -1) at $DENO"
