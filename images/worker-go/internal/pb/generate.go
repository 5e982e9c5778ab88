// Package pb holds the Go code generated from the one gRPC contract,
// proto/aiswarm/v1/worker_callback.proto at the repository root.
//
// The generated *.pb.go files are build output: run `go generate ./...` (or
// ../../build.sh, which also installs the pinned protoc plugins) to make them.
// pb_test.go fails when they are stale relative to the proto.
package pb

// Paths are relative to this folder: the proto root is four levels up, and the
// "module=" option maps the proto's go_package onto this module's folders, so
// the files land here whatever folder the repository is checked out in.
//go:generate protoc -I ../../../../proto --go_out=../.. --go_opt=module=github.com/ai-swarm/ai-swarm/images/worker-go --go-grpc_out=../.. --go-grpc_opt=module=github.com/ai-swarm/ai-swarm/images/worker-go aiswarm/v1/worker_callback.proto
