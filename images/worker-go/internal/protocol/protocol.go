// Package protocol holds the MQTT side of docs/protocol.md: topic names, the
// JSON payloads a worker publishes, and strict validation of the task payload
// it receives. Pure code, no I/O.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Version is the "v" of every payload.
const Version = 1

// MaxPayloadBytes is the largest payload any component accepts (64 KiB).
const MaxPayloadBytes = 64 * 1024

// MaxQueryChars is the longest query a task may carry.
const MaxQueryChars = 16000

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
// worker list from heartbeats alone. TaskID is null when idle.
type Heartbeat struct {
	V        int     `json:"v"`
	Type     string  `json:"type"`
	WorkerID string  `json:"worker_id"`
	Language string  `json:"language"`
	Node     string  `json:"node"`
	Status   string  `json:"status"`
	TaskID   *string `json:"task_id"`
	TS       int64   `json:"ts"`
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

func NewHeartbeat(workerID, language, node, status, taskID string, ts int64) Heartbeat {
	return Heartbeat{Version, "heartbeat", workerID, language, node, status, nullable(taskID), ts}
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

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ParseTask validates a task payload field by field, as docs/protocol.md
// requires: size, JSON object, v, type, then each field's presence and type.
func ParseTask(payload []byte) (Task, error) {
	if len(payload) > MaxPayloadBytes {
		return Task{}, invalid("payload is %d bytes, more than %d", len(payload), MaxPayloadBytes)
	}
	fields, err := decodeObject(payload)
	if err != nil {
		return Task{}, err
	}
	if err := expectHeader(fields, "task"); err != nil {
		return Task{}, err
	}
	var t Task
	if t.TaskID, err = stringField(fields, "task_id"); err != nil {
		return Task{}, err
	}
	if t.TaskID == "" {
		return Task{}, invalid("task_id is empty")
	}
	if t.Query, err = stringField(fields, "query"); err != nil {
		return Task{}, err
	}
	if n := utf8.RuneCountInString(t.Query); n < 1 || n > MaxQueryChars {
		return Task{}, invalid("query has %d characters, want 1 to %d", n, MaxQueryChars)
	}
	if t.LeaseMS, err = nonNegativeIntField(fields, "lease_ms"); err != nil {
		return Task{}, err
	}
	if t.HasCredential, err = boolField(fields, "has_credential"); err != nil {
		return Task{}, err
	}
	if t.TS, err = nonNegativeIntField(fields, "ts"); err != nil {
		return Task{}, err
	}
	return t, nil
}

// decodeObject parses a JSON object into raw fields, keeping numbers exact.
func decodeObject(payload []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(payload) {
		return nil, invalid("not JSON")
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, invalid("not a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, invalid("not a JSON object")
	}
	return fields, nil
}

func expectHeader(fields map[string]json.RawMessage, wantType string) error {
	v, err := nonNegativeIntField(fields, "v")
	if err != nil {
		return err
	}
	if v != Version {
		return invalid("v is %d, want %d", v, Version)
	}
	typ, err := stringField(fields, "type")
	if err != nil {
		return err
	}
	if typ != wantType {
		return invalid("type is not %q", wantType)
	}
	return nil
}

func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok {
		return "", invalid("%s is missing", name)
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", invalid("%s must be a string", name)
	}
	return s, nil
}

func boolField(fields map[string]json.RawMessage, name string) (bool, error) {
	raw, ok := fields[name]
	if !ok {
		return false, invalid("%s is missing", name)
	}
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, invalid("%s must be a boolean", name)
}

// nonNegativeIntField accepts a JSON number that is a whole number >= 0
// ("12", not "12.5", "-1", "1e3" or "\"12\"").
func nonNegativeIntField(fields map[string]json.RawMessage, name string) (int64, error) {
	raw, ok := fields[name]
	if !ok {
		return 0, invalid("%s is missing", name)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 {
		return 0, invalid("%s must be a non-negative integer", name)
	}
	return n, nil
}
