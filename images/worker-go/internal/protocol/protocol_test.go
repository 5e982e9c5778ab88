package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const validTask = `{"v":1,"type":"task","task_id":"q_01","query":"What is Docker Swarm?","lease_ms":30000,"has_credential":true,"ts":1764355200100,"extra":"ignored"}`

func TestParseTaskAcceptsAValidTask(t *testing.T) {
	got, err := ParseTask([]byte(validTask))
	if err != nil {
		t.Fatalf("ParseTask: %v", err)
	}
	want := Task{TaskID: "q_01", Query: "What is Docker Swarm?", LeaseMS: 30000, HasCredential: true, TS: 1764355200100}
	if got != want {
		t.Errorf("ParseTask = %+v, want %+v", got, want)
	}
}

// withField returns validTask with one field replaced (raw JSON) or removed ("").
func withField(t *testing.T, name, raw string) []byte {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validTask), &fields); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(fields, name)
	} else {
		fields[name] = json.RawMessage(raw)
	}
	data, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseTaskRejectsMalformedPayloads(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    string // part of the error
	}{
		{"not JSON", []byte("{nope"), "not JSON"},
		{"empty", []byte(""), "not JSON"},
		{"array", []byte(`[1,2]`), "not a JSON object"},
		{"string", []byte(`"task"`), "not a JSON object"},
		{"null", []byte(`null`), "not a JSON object"},
		{"too big", []byte(`{"pad":"` + strings.Repeat("x", MaxPayloadBytes) + `"}`), "more than"},
		{"v missing", withField(t, "v", ""), "v is missing"},
		{"v wrong", withField(t, "v", "2"), "v is 2"},
		{"v string", withField(t, "v", `"1"`), "v must be"},
		{"type wrong", withField(t, "type", `"register"`), "type is not"},
		{"type missing", withField(t, "type", ""), "type is missing"},
		{"task_id missing", withField(t, "task_id", ""), "task_id is missing"},
		{"task_id number", withField(t, "task_id", "12"), "task_id must be a string"},
		{"task_id empty", withField(t, "task_id", `""`), "task_id is empty"},
		{"query missing", withField(t, "query", ""), "query is missing"},
		{"query null", withField(t, "query", "null"), "query must be a string"},
		{"query empty", withField(t, "query", `""`), "query has 0 characters"},
		{"query too long", withField(t, "query", `"`+strings.Repeat("é", MaxQueryChars+1)+`"`), "query has 16001"},
		{"lease_ms negative", withField(t, "lease_ms", "-1"), "lease_ms must be"},
		{"lease_ms fraction", withField(t, "lease_ms", "1.5"), "lease_ms must be"},
		{"lease_ms string", withField(t, "lease_ms", `"30000"`), "lease_ms must be"},
		{"has_credential string", withField(t, "has_credential", `"true"`), "has_credential must be a boolean"},
		{"has_credential missing", withField(t, "has_credential", ""), "has_credential is missing"},
		{"ts missing", withField(t, "ts", ""), "ts is missing"},
		{"ts float", withField(t, "ts", "1e3"), "ts must be"},
	}
	for _, tc := range cases {
		_, err := ParseTask(tc.payload)
		if err == nil {
			t.Errorf("%s: accepted, want an error", tc.name)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want ErrInvalid containing %q", tc.name, err, tc.want)
		}
	}
}

func TestParseTaskCountsCharactersNotBytes(t *testing.T) {
	query := strings.Repeat("é", MaxQueryChars) // 32000 bytes, 16000 characters
	if _, err := ParseTask(withField(t, "query", `"`+query+`"`)); err != nil {
		t.Errorf("16000 two-byte characters rejected: %v", err)
	}
}

func TestErrorsDoNotEchoContent(t *testing.T) {
	_, err := ParseTask(withField(t, "type", `"secret-looking-type"`))
	if err == nil || strings.Contains(err.Error(), "secret-looking-type") {
		t.Errorf("error %v echoes the payload", err)
	}
}

func TestTopics(t *testing.T) {
	tp := Topics{Prefix: "ai-system", WorkerID: "go-vm2-1a2b"}
	got := []string{tp.Register(), tp.Heartbeat(), tp.Status(), tp.Tasks(), tp.Logs()}
	want := []string{
		"ai-system/workers/go-vm2-1a2b/register", "ai-system/workers/go-vm2-1a2b/heartbeat",
		"ai-system/workers/go-vm2-1a2b/status", "ai-system/workers/go-vm2-1a2b/tasks", "ai-system/logs",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("topics = %v, want %v", got, want)
	}
}

// decode turns an encoded payload back into a generic map for comparison.
func decode(t *testing.T, payload any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(Encode(payload), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOutgoingPayloadsMatchTheContract(t *testing.T) {
	cases := []struct {
		name string
		got  map[string]any
		want map[string]any
	}{
		{"register", decode(t, NewRegister("w1", "go", "vm2", "offline", 5)),
			map[string]any{"v": 1.0, "type": "register", "worker_id": "w1", "language": "go", "node": "vm2", "provider": "offline", "ts": 5.0}},
		{"heartbeat idle", decode(t, NewHeartbeat("w1", "go", "vm2", StatusIdle, "", 6)),
			map[string]any{"v": 1.0, "type": "heartbeat", "worker_id": "w1", "language": "go", "node": "vm2", "status": "idle", "task_id": nil, "ts": 6.0}},
		{"heartbeat busy", decode(t, NewHeartbeat("w1", "go", "vm2", StatusBusy, "q1", 7)),
			map[string]any{"v": 1.0, "type": "heartbeat", "worker_id": "w1", "language": "go", "node": "vm2", "status": "busy", "task_id": "q1", "ts": 7.0}},
		{"status idle", decode(t, NewStatus("w1", StatusIdle, "", 8)),
			map[string]any{"v": 1.0, "type": "status", "worker_id": "w1", "status": "idle", "task_id": nil, "ts": 8.0}},
		{"status rejected", decode(t, func() Status {
			s := NewStatus("w1", StatusBusy, "q1", 9)
			s.RejectedTaskID = "q2"
			return s
		}()),
			map[string]any{"v": 1.0, "type": "status", "worker_id": "w1", "status": "busy", "task_id": "q1", "rejected_task_id": "q2", "ts": 9.0}},
		{"log", decode(t, NewLog("w1", LevelInfo, "task q1 started", "q1", 10)),
			map[string]any{"v": 1.0, "type": "log", "source": "w1", "level": "info", "message": "task q1 started", "task_id": "q1", "ts": 10.0}},
		{"log without task", decode(t, NewLog("w1", LevelError, "boom", "", 11)),
			map[string]any{"v": 1.0, "type": "log", "source": "w1", "level": "error", "message": "boom", "ts": 11.0}},
	}
	for _, tc := range cases {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
