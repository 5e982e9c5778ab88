// Package protocol holds the MQTT side of docs/protocol.md: topic names, the
// JSON payloads a worker publishes, and the validation of received payloads
// against the one schema of every payload, proto/mqtt/payloads.schema.json
// (embedded; see generate.go), with santhosh-tekuri/jsonschema. What the schema
// cannot say is here: the byte limit is checked before parsing, and UTF-8 and
// JSON before the schema. Pure code, no I/O.
package protocol

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Version is the "v" of every payload.
const Version = 1

// maxBytesKeyword is the annotation of the schema's root that gives the largest payload in bytes.
const maxBytesKeyword = "x-max-payload-bytes"

// Worker statuses.
const (
	StatusIdle    = "idle"
	StatusBusy    = "busy"
	StatusOffline = "offline"
)

// Log levels.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Topics names the topics of one worker under prefix P.
type Topics struct {
	Prefix   string
	WorkerID string
}

func (t Topics) worker(leaf string) string {
	return t.Prefix + "/workers/" + t.WorkerID + "/" + leaf
}

func (t Topics) Register() string  { return t.worker("register") }
func (t Topics) Heartbeat() string { return t.worker("heartbeat") }
func (t Topics) Status() string    { return t.worker("status") }
func (t Topics) Tasks() string     { return t.worker("tasks") }
func (t Topics) Logs() string      { return t.Prefix + "/logs" }

// Register announces the worker after every (re)connect.
type Register struct {
	V        int    `json:"v"`
	Type     string `json:"type"`
	WorkerID string `json:"worker_id"`
	Language string `json:"language"`
	Node     string `json:"node"`
	Provider string `json:"provider"`
	TS       int64  `json:"ts"`
}

// Heartbeat carries the whole identity so a restarted master can rebuild its
// worker list from heartbeats alone. TaskID is null when idle; HeldTaskIDs
// is every task the worker holds (the one in hand, then the one waiting to
// run next), so the master renews each one's lease.
type Heartbeat struct {
	V           int      `json:"v"`
	Type        string   `json:"type"`
	WorkerID    string   `json:"worker_id"`
	Language    string   `json:"language"`
	Node        string   `json:"node"`
	Status      string   `json:"status"`
	TaskID      *string  `json:"task_id"`
	HeldTaskIDs []string `json:"held_task_ids"`
	TS          int64    `json:"ts"`
}

// Status reports a change of state; it is also the last will (offline).
// RejectedTaskID names a task that arrived while the worker was busy.
type Status struct {
	V              int     `json:"v"`
	Type           string  `json:"type"`
	WorkerID       string  `json:"worker_id"`
	Status         string  `json:"status"`
	TaskID         *string `json:"task_id"`
	RejectedTaskID string  `json:"rejected_task_id,omitempty"`
	TS             int64   `json:"ts"`
}

// Log is an event worth seeing cluster-wide, published on P/logs.
type Log struct {
	V       int    `json:"v"`
	Type    string `json:"type"`
	Source  string `json:"source"`
	Level   string `json:"level"`
	Message string `json:"message"`
	TaskID  string `json:"task_id,omitempty"`
	TS      int64  `json:"ts"`
}

// NewRegister, NewHeartbeat, NewStatus and NewLog fill in "v" and "type".
func NewRegister(workerID, language, node, provider string, ts int64) Register {
	return Register{Version, "register", workerID, language, node, provider, ts}
}

func NewHeartbeat(workerID, language, node, status, taskID string, held []string, ts int64) Heartbeat {
	if held == nil {
		held = []string{} // [] on the wire, never null
	}
	return Heartbeat{Version, "heartbeat", workerID, language, node, status, nullable(taskID), held, ts}
}

func NewStatus(workerID, status, taskID string, ts int64) Status {
	return Status{V: Version, Type: "status", WorkerID: workerID, Status: status, TaskID: nullable(taskID), TS: ts}
}

func NewLog(source, level, message, taskID string, ts int64) Log {
	return Log{Version, "log", source, level, message, taskID, ts}
}

// nullable maps "" (no task) to JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Encode marshals a payload. The payload types above cannot fail to marshal.
func Encode(payload any) []byte {
	data, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("protocol: cannot encode %T: %v", payload, err))
	}
	return data
}

// Task is a validated task message.
type Task struct {
	TaskID        string
	Query         string
	LeaseMS       int64
	HasCredential bool
	TS            int64
}

// ErrInvalid marks every validation failure, so callers can tell a bad
// message from other errors. Messages name the field, never its content.
var ErrInvalid = errors.New("invalid payload")

// Rules: why a payload is refused (the shared test vectors name the same).
const (
	RuleTooLarge  = "too-large"
	RuleNotJSON   = "not-json"
	RuleNotObject = "not-object"
	RuleField     = "field"
)

// Problem is a top-level field the schema refuses, and the schema keyword that refuses it.
type Problem struct {
	Field   string
	Keyword string
}

// PayloadError is a refused payload: its rule, and for RuleField the fields. It wraps ErrInvalid.
type PayloadError struct {
	Rule     string
	Problems []Problem
	reason   string
}

func (e *PayloadError) Error() string { return ErrInvalid.Error() + ": " + e.reason }
func (e *PayloadError) Unwrap() error { return ErrInvalid }

//go:embed payloads.schema.json
var embeddedSchema []byte

// Payloads is proto/mqtt/payloads.schema.json, compiled: one validator per message ($defs
// entry of type object).
type Payloads struct {
	// MaxBytes is the largest payload a receiver parses (the schema's x-max-payload-bytes).
	MaxBytes int
	defs     map[string]*jsonschema.Schema
}

// Schema is the embedded schema, compiled at start. The tests check it, so a schema that does
// not compile is a build defect, not an input error: it stops the program.
var Schema = compile(embeddedSchema)

func compile(data []byte) *Payloads {
	must := func(err error) {
		if err != nil {
			panic("protocol: the embedded payload schema: " + err.Error())
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	must(err)
	root := doc.(map[string]any)
	maxBytes, err := root[maxBytesKeyword].(json.Number).Int64()
	must(err)
	id := root["$id"].(string) // the compiler knows the document by it, so nothing is fetched
	compiler := jsonschema.NewCompiler()
	must(compiler.AddResource(id, doc))
	p := &Payloads{MaxBytes: int(maxBytes), defs: map[string]*jsonschema.Schema{}}
	for name, def := range root["$defs"].(map[string]any) {
		if def.(map[string]any)["type"] == "object" {
			p.defs[name], err = compiler.Compile(id + "#/$defs/" + name)
			must(err)
		}
	}
	return p
}

// Validate checks a received payload as a messageType message ("task", "status", …: a $defs
// entry) and returns it decoded, numbers as json.Number. Errors are *PayloadError.
func (p *Payloads) Validate(messageType string, payload []byte) (map[string]any, error) {
	if len(payload) > p.MaxBytes {
		return nil, &PayloadError{Rule: RuleTooLarge, reason: fmt.Sprintf("payload is %d bytes, more than %d", len(payload), p.MaxBytes)}
	}
	def, ok := p.defs[messageType]
	if !ok {
		return nil, fmt.Errorf("protocol: no message type %q in the schema", messageType)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil || !utf8.Valid(payload) { // Go's decoder would read invalid UTF-8 as U+FFFD
		return nil, &PayloadError{Rule: RuleNotJSON, reason: "not UTF-8 JSON"}
	}
	var verr *jsonschema.ValidationError
	if err := def.Validate(doc); errors.As(err, &verr) {
		return nil, refusal(verr)
	} else if err != nil {
		return nil, err
	}
	return doc.(map[string]any), nil
}

// refusal maps the leaves of a validation error to fields: the missing ones for `required`,
// else the first segment of the instance location. A root-level `type` error: not an object.
func refusal(verr *jsonschema.ValidationError) *PayloadError {
	var problems []Problem
	add := func(p Problem) {
		if !slices.Contains(problems, p) {
			problems = append(problems, p)
		}
	}
	notObject := false
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		for _, cause := range e.Causes {
			walk(cause)
		}
		if len(e.Causes) > 0 {
			return
		}
		keyword := keywordOf(e.ErrorKind)
		required, isRequired := e.ErrorKind.(*kind.Required)
		switch {
		case len(e.InstanceLocation) > 0:
			add(Problem{e.InstanceLocation[0], keyword})
		case isRequired:
			for _, name := range required.Missing {
				add(Problem{name, keyword})
			}
		case keyword == "type":
			notObject = true
		}
	}
	walk(verr)
	if notObject {
		return &PayloadError{Rule: RuleNotObject, reason: "not a JSON object"}
	}
	parts := make([]string, len(problems))
	for i, pr := range problems {
		parts[i] = pr.Field + " (" + pr.Keyword + ")"
	}
	return &PayloadError{Rule: RuleField, Problems: problems, reason: "invalid field(s): " + strings.Join(parts, ", ")}
}

// keywordOf names the schema keyword of a leaf error (the library gives `not` no keyword path).
func keywordOf(k jsonschema.ErrorKind) string {
	if _, ok := k.(*kind.Not); ok {
		return "not"
	}
	path := k.KeywordPath()
	if len(path) == 0 {
		return ""
	}
	return path[len(path)-1]
}

// ParseTask validates a task payload against the schema and reads its fields.
func ParseTask(payload []byte) (Task, error) {
	doc, err := Schema.Validate("task", payload)
	if err != nil {
		return Task{}, err
	}
	return Task{
		TaskID:        doc["task_id"].(string),
		Query:         doc["query"].(string),
		LeaseMS:       integer(doc["lease_ms"]),
		HasCredential: doc["has_credential"].(bool),
		TS:            integer(doc["ts"]),
	}, nil
}

// integer reads a number the schema has checked to be an integer in [0, 2^53-1]. JSON has one
// number type (3e4 is 30000); float64 holds every integer of that range exactly.
func integer(v any) int64 {
	f, _ := v.(json.Number).Float64()
	return int64(f)
}
