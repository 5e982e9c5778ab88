#!/usr/bin/env bash
# Sets up everything the system needs on a fresh Debian machine: system
# packages, Node modules, and each service built the way its README says.
# Idempotent: a second run only redoes what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
timed() { local started=$SECONDS; "$@"; echo "    done in $((SECONDS - started)) s"; }

APT_PACKAGES=(mosquitto etcd-server etcd-client chromium protobuf-compiler openssh-server openssh-client)
install_system_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then echo "    already installed: ${APT_PACKAGES[*]}"; return; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} — run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
  echo "    installed: ${missing[*]}"
}

step "Debian packages (${APT_PACKAGES[*]})"
timed install_system_packages

step "root Node modules (Pulumi program, tests, tools)"
# --ignore-scripts: no dependency here needs an install script, and
# @pulumi/command's would try to download a provider plugin.
timed npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# better-sqlite3 has no prebuilt binary reachable here, so node-gyp compiles it;
# point it at the local Node headers instead of a download.
export npm_config_nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"

step "master (images/master)"
timed bash -c 'cd images/master && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build'

step "Python worker (images/worker-python)"
timed bash images/worker-python/setup.sh

step "Go worker (images/worker-go)"
timed bash images/worker-go/build.sh

step "Java worker (images/worker-java)"
timed bash -c 'cd images/worker-java && mvn -q -B package -DskipTests'

echo
echo "setup complete"
