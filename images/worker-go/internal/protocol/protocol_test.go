package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// protoMQTT is proto/mqtt at the repository root, four levels up.
var protoMQTT = filepath.Join("..", "..", "..", "..", "proto", "mqtt")

func TestTheEmbeddedSchemaIsTheRepositorys(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(protoMQTT, "payloads.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(original, embeddedSchema) {
		t.Fatal("internal/protocol/payloads.schema.json differs from proto/mqtt/payloads.schema.json: run go generate ./...")
	}
}

// vectorCase is one case of proto/mqtt/vectors/payloads.json (format.schema.json there says how it is written).
type vectorCase struct {
	Name  string         `json:"name"`
	Set   map[string]any `json:"set"`
	Unset []string       `json:"unset"`
	Fill  *struct {
		Field string `json:"field"`
		Unit  string `json:"unit"`
		Times int    `json:"times"`
	} `json:"fill"`
	PadToBytes int     `json:"pad_to_bytes"`
	Text       *string `json:"text"`
	Repeat     int     `json:"repeat"`
	Hex        *string `json:"hex"`
	Valid      bool    `json:"valid"`
	Rule       string  `json:"rule"`
	Field      string  `json:"field"`
	Keyword    string  `json:"keyword"`
}

type vectorGroup struct {
	Type  string         `json:"type"`
	Base  map[string]any `json:"base"`
	Cases []vectorCase   `json:"cases"`
}

func vectorGroups(t *testing.T) []vectorGroup {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(protoMQTT, "vectors", "payloads.json"))
	if err != nil {
		t.Fatal(err)
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber() // numbers stay as written (2^53 does not survive a float64 round trip as text)
	var file struct {
		Groups []vectorGroup `json:"groups"`
	}
	if err := decoder.Decode(&file); err != nil {
		t.Fatal(err)
	}
	return file.Groups
}

// vectorBytes makes the bytes a case stands for.
func vectorBytes(t *testing.T, group vectorGroup, c vectorCase) []byte {
	t.Helper()
	switch {
	case c.Text != nil:
		return []byte(strings.Repeat(*c.Text, max(c.Repeat, 1)))
	case c.Hex != nil:
		raw, err := hex.DecodeString(*c.Hex)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	payload := map[string]any{}
	for k, v := range group.Base {
		payload[k] = v
	}
	for k, v := range c.Set {
		payload[k] = v
	}
	for _, k := range c.Unset {
		delete(payload, k)
	}
	if c.Fill != nil {
		payload[c.Fill.Field] = strings.Repeat(c.Fill.Unit, c.Fill.Times)
	}
	raw := Encode(payload)
	if c.PadToBytes > 0 {
		if len(raw) > c.PadToBytes {
			t.Fatalf("vector %q: payload is already %d bytes", c.Name, len(raw))
		}
		raw = append(raw, bytes.Repeat([]byte(" "), c.PadToBytes-len(raw))...)
	}
	return raw
}

func TestSharedVectors(t *testing.T) {
	for _, group := range vectorGroups(t) {
		for _, c := range group.Cases {
			t.Run(group.Type+": "+c.Name, func(t *testing.T) {
				_, err := Schema.Validate(group.Type, vectorBytes(t, group, c))
				if c.Valid {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				var refused *PayloadError
				if !errors.As(err, &refused) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want a *PayloadError wrapping ErrInvalid", err)
				}
				if refused.Rule != c.Rule {
					t.Fatalf("rule %q (%v), want %q", refused.Rule, err, c.Rule)
				}
				if c.Rule != RuleField {
					return
				}
				var fields, keywords []string
				for _, p := range refused.Problems {
					if !slices.Contains(fields, p.Field) {
						fields = append(fields, p.Field)
					}
					keywords = append(keywords, p.Keyword)
				}
				if !reflect.DeepEqual(fields, []string{c.Field}) || !slices.Contains(keywords, c.Keyword) {
					t.Errorf("problems %+v, want field %q with keyword %q", refused.Problems, c.Field, c.Keyword)
				}
			})
		}
	}
}

func TestParseTaskReadsTypedFields(t *testing.T) {
	got, err := ParseTask([]byte(`{"v":1,"type":"task","task_id":"q_01","query":"Why?","lease_ms":3e4,"has_credential":true,"ts":1764355200100}`))
	if err != nil {
		t.Fatalf("ParseTask: %v", err)
	}
	want := Task{TaskID: "q_01", Query: "Why?", LeaseMS: 30000, HasCredential: true, TS: 1764355200100}
	if got != want {
		t.Errorf("ParseTask = %+v, want %+v", got, want)
	}
}

func TestErrorsDoNotEchoContent(t *testing.T) {
	_, err := ParseTask([]byte(`{"v":1,"type":"secret-looking-type","task_id":"q","query":"secret query","lease_ms":"x"}`))
	if err == nil || !strings.HasPrefix(err.Error(), "invalid payload: invalid field(s): ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v: want the fields named and no content", err)
	}
}

func TestTheByteLimitComesFromTheSchema(t *testing.T) {
	if Schema.MaxBytes != 64*1024 {
		t.Errorf("MaxBytes = %d, want 64 KiB", Schema.MaxBytes)
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

func TestPublishedPayloadsAreTheDocumentedOnes(t *testing.T) {
	rejection := NewStatus("w1", StatusBusy, "q1", 9)
	rejection.RejectedTaskID = "q2"
	cases := []struct {
		def     string
		payload any
		want    string
	}{
		{"register", NewRegister("w1", "go", "vm2", "offline", 5),
			`{"v":1,"type":"register","worker_id":"w1","language":"go","node":"vm2","provider":"offline","ts":5}`},
		{"heartbeat", NewHeartbeat("w1", "go", "vm2", StatusIdle, "", nil, 6),
			`{"v":1,"type":"heartbeat","worker_id":"w1","language":"go","node":"vm2","status":"idle","task_id":null,"held_task_ids":[],"ts":6}`},
		{"heartbeat", NewHeartbeat("w1", "go", "vm2", StatusBusy, "q1", []string{"q1", "q2"}, 7),
			`{"v":1,"type":"heartbeat","worker_id":"w1","language":"go","node":"vm2","status":"busy","task_id":"q1","held_task_ids":["q1","q2"],"ts":7}`},
		{"status", NewStatus("w1", StatusIdle, "", 8),
			`{"v":1,"type":"status","worker_id":"w1","status":"idle","task_id":null,"ts":8}`},
		{"rejection", rejection,
			`{"v":1,"type":"status","worker_id":"w1","status":"busy","task_id":"q1","rejected_task_id":"q2","ts":9}`},
		{"lastWill", NewStatus("w1", StatusOffline, "", 10),
			`{"v":1,"type":"status","worker_id":"w1","status":"offline","task_id":null,"ts":10}`},
		{"log", NewLog("w1", LevelInfo, "task q1 started", "q1", 10),
			`{"v":1,"type":"log","source":"w1","level":"info","message":"task q1 started","task_id":"q1","ts":10}`},
		{"log", NewLog("w1", LevelError, "boom", "", 11),
			`{"v":1,"type":"log","source":"w1","level":"error","message":"boom","ts":11}`},
	}
	for _, tc := range cases {
		got := Encode(tc.payload)
		if string(got) != tc.want {
			t.Errorf("%s = %s, want %s", tc.def, got, tc.want)
		}
		if _, err := Schema.Validate(tc.def, got); err != nil {
			t.Errorf("%s %s: %v", tc.def, got, err)
		}
	}
}
