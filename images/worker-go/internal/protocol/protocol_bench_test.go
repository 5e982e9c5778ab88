package protocol

import "testing"

// A task as the master sends it (images/master/src/protocol.ts encodeTask).
var benchTask = []byte(`{"v":1,"type":"task","task_id":"q-01HXYZABCDEF0123456789","query":"What is the capital of France and why is it important in European history?","lease_ms":30000,"has_credential":false,"ts":1732890000000}`)

// BenchmarkParseTask is the cost of reading one task: size and UTF-8 checks,
// decoding, and validation against the embedded schema.
// Run: go test ./internal/protocol -run '^$' -bench ParseTask -count 5
func BenchmarkParseTask(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseTask(benchTask); err != nil {
			b.Fatal(err)
		}
	}
}
