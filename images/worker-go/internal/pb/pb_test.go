package pb

import (
	"bytes"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the code from the proto into a temp
// folder and compares it byte for byte with the files in this folder, so a
// proto change that was not regenerated fails the suite. The protoc arguments
// mirror the go:generate line in generate.go.
func TestGeneratedCodeIsFresh(t *testing.T) {
	// build.sh installs the plugins into GOPATH/bin, which is often not on PATH.
	t.Setenv("PATH", filepath.Join(build.Default.GOPATH, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not on PATH (run ../../build.sh tools; protoc comes from Debian's protobuf-compiler)", tool)
		}
	}
	const module = "github.com/ai-swarm/ai-swarm/images/worker-go"
	out := t.TempDir()
	cmd := exec.Command("protoc", "-I", "../../../../proto",
		"--go_out="+out, "--go_opt=module="+module,
		"--go-grpc_out="+out, "--go-grpc_opt=module="+module,
		"aiswarm/v1/worker_callback.proto")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc failed: %v\n%s", err, msg)
	}
	for _, name := range []string{"worker_callback.pb.go", "worker_callback_grpc.pb.go"} {
		fresh, err := os.ReadFile(filepath.Join(out, "internal", "pb", name))
		if err != nil {
			t.Fatalf("protoc did not produce %s: %v", name, err)
		}
		current, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%s is missing: run go generate ./... (%v)", name, err)
		}
		if !bytes.Equal(fresh, current) {
			t.Errorf("%s is stale relative to proto/aiswarm/v1/worker_callback.proto (or was made by other plugin versions): run ./build.sh", name)
		}
	}
}
