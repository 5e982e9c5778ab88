package protocol

// The MQTT payload schema, proto/mqtt/payloads.schema.json at the repository root, is
// embedded from a copy in this folder (go:embed cannot reach outside the module). The copy
// is build output like the gRPC code: `go generate ./...` (or ../../build.sh) makes it, and
// protocol_test.go fails while it differs from the original.
//go:generate cp ../../../../proto/mqtt/payloads.schema.json payloads.schema.json
