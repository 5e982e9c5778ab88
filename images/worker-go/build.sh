#!/bin/sh
# Builds the Go worker: installs the pinned protoc plugins if missing,
# regenerates internal/pb from ../../proto, and builds a static bin/worker.
#
#   ./build.sh         plugins + generate + build
#   ./build.sh tools   only install the protoc plugins (used by the Dockerfile
#                      to cache that step in its own layer)
#
# Needs: go (1.26+), protoc (Debian: apt-get install -y protobuf-compiler).
set -eu

# Pinned plugin versions. protoc-gen-go must match google.golang.org/protobuf
# in go.mod; protoc-gen-go-grpc emits code for the grpc version in go.mod.
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

cd "$(dirname "$0")"
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

# Installs a plugin unless the same version is already on PATH.
install_plugin() {
  name=$1 pkg=$2 version=$3
  if command -v "$name" >/dev/null 2>&1 &&
     go version -m "$(command -v "$name")" | grep -q "mod.*$version"; then
    return 0
  fi
  echo "installing $pkg@$version"
  go install "$pkg@$version"
}

install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
[ "${1:-}" = tools ] && exit 0

command -v protoc >/dev/null 2>&1 || {
  echo "build.sh: protoc not found (Debian: apt-get install -y protobuf-compiler)" >&2
  exit 1
}

go generate ./...
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/worker ./cmd/worker
echo "built $(pwd)/bin/worker"
