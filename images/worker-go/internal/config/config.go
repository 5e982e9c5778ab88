// Package config reads and validates the worker's environment, as proto/worker-settings.json
// defines it for every worker language (docs/protocol.md, "Worker environment"). The names,
// defaults, bounds, allowed values and messages come from settings_gen.go, generated from that
// table; this file only applies them. It does no network I/O: Load takes the environment and a
// file reader as arguments, so every rule is unit-tested without touching the process.
//
// Why not github.com/caarlos0/env: its struct tags hold defaults and types but not the
// contract's rules (a NAME_FILE that wins over NAME, empty counting as unset, bounds, patterns,
// a requirement that depends on another variable) nor its messages, which must read the same
// in Go, Python and Java; the small reader below applies the shared table instead.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Language is what this worker reports in register, heartbeat and results.
const Language = "go"

// Secret holds a key, token or password. It prints as "[redacted]" so that a
// log line or error that formats a Config never shows it; Value gives the text.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }
func (s Secret) Value() string  { return string(s) }
func (s Secret) IsSet() bool    { return s != "" }

// Config is the validated worker configuration.
type Config struct {
	WorkerID string
	Node     string
	TaskSlot string // the replica's Swarm slot, part of the default WorkerID; "" if unset

	MQTTHost     string
	MQTTPort     int
	MQTTUsername string
	MQTTPassword Secret
	MQTTTLS      bool
	MQTTCAFile   string
	TopicPrefix  string

	MasterGRPCAddr string
	GRPCToken      Secret

	LLMProvider   string
	GeminiAPIKey  Secret
	GeminiBaseURL string
	GeminiModel   string
	OpenAIBaseURL string
	OpenAIAPIKey  Secret
	OpenAIModel   string

	LLMTimeout          time.Duration
	SimulatedWork       time.Duration
	HeartbeatInterval   time.Duration
	ResultRetryDeadline time.Duration
	ShutdownGrace       time.Duration
	HealthFile          string

	// LogLevel is the lowest level printed on stdout and, for log events,
	// published on P/logs.
	LogLevel slog.Level
}

// Env looks a variable up; ok is false when it is unset.
type Env func(name string) (value string, ok bool)

// ReadFile reads a file named by a *_FILE variable or a file setting.
type ReadFile func(path string) ([]byte, error)

var (
	workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	// integerText is what every worker language reads as an integer: ASCII digits, maybe a minus.
	integerText = regexp.MustCompile(`^-?[0-9]+$`)
)

// ValidWorkerID says whether id is 1 to 64 characters of [A-Za-z0-9_.-].
func ValidWorkerID(id string) bool { return workerIDPattern.MatchString(id) }

// Load builds the configuration from env. hostname is the machine's host name
// (the default node and part of the default worker id). Every problem found is
// reported, one line each, in the table's order.
func Load(env Env, readFile ReadFile, hostname string) (Config, error) {
	v := read(env, readFile, map[string]string{"NODE_HOSTNAME": hostname}, nil)
	ms := func(name string) time.Duration { return time.Duration(v.num[name]) * time.Millisecond }
	level, _ := ParseLogLevel(v.text["LOG_LEVEL"]) // validated against the table's values
	c := Config{
		WorkerID:            v.text["WORKER_ID"],
		Node:                v.text["NODE_HOSTNAME"],
		TaskSlot:            v.text["TASK_SLOT"],
		MQTTHost:            v.text["MQTT_HOST"],
		MQTTPort:            int(v.num["MQTT_PORT"]),
		MQTTUsername:        v.text["MQTT_USERNAME"],
		MQTTPassword:        Secret(v.text["MQTT_PASSWORD"]),
		MQTTTLS:             v.flag["MQTT_TLS"],
		MQTTCAFile:          v.text["MQTT_CA_FILE"],
		TopicPrefix:         v.text["MQTT_TOPIC_PREFIX"],
		MasterGRPCAddr:      v.text["MASTER_GRPC_ADDR"],
		GRPCToken:           Secret(v.text["GRPC_TOKEN"]),
		LLMProvider:         v.text["LLM_PROVIDER"],
		GeminiAPIKey:        Secret(v.text["GEMINI_API_KEY"]),
		GeminiBaseURL:       v.text["GEMINI_BASE_URL"],
		GeminiModel:         v.text["GEMINI_MODEL"],
		OpenAIBaseURL:       v.text["OPENAI_BASE_URL"],
		OpenAIAPIKey:        Secret(v.text["OPENAI_API_KEY"]),
		OpenAIModel:         v.text["OPENAI_MODEL"],
		LLMTimeout:          ms("LLM_TIMEOUT_MS"),
		SimulatedWork:       ms("SIMULATED_WORK_MS"),
		HeartbeatInterval:   ms("HEARTBEAT_INTERVAL_MS"),
		ResultRetryDeadline: ms("RESULT_RETRY_DEADLINE_MS"),
		ShutdownGrace:       ms("SHUTDOWN_GRACE_MS"),
		HealthFile:          v.text["HEALTH_FILE"],
		LogLevel:            level,
	}
	if c.WorkerID == "" {
		suffix := randomHex8()
		if c.TaskSlot != "" {
			suffix = c.TaskSlot + "-" + suffix // the replica's slot keeps one service's replicas on a VM apart
		}
		c.WorkerID = DefaultWorkerID(c.Node, suffix)
	}
	return c, errors.Join(v.problems...)
}

// HealthSettings reads only what `worker -healthcheck` needs, so the
// healthcheck does not depend on secrets or other variables being readable.
func HealthSettings(env Env) (healthFile string, heartbeat time.Duration, err error) {
	v := read(env, nil, nil, []string{"HEALTH_FILE", "HEARTBEAT_INTERVAL_MS"})
	return v.text["HEALTH_FILE"], time.Duration(v.num["HEARTBEAT_INTERVAL_MS"]) * time.Millisecond, errors.Join(v.problems...)
}

// values are the settings read: text (strings, choices, files, secrets), integers and booleans,
// each under its variable name, and one error per problem.
type values struct {
	text     map[string]string
	num      map[string]int64
	flag     map[string]bool
	problems []error
}

// read applies the table to env. computed gives defaults the table cannot hold (the host
// name); only, when not nil, limits reading to those variables.
func read(env Env, readFile ReadFile, computed map[string]string, only []string) values {
	v := values{text: map[string]string{}, num: map[string]int64{}, flag: map[string]bool{}}
	lookup := func(name string) (string, bool) {
		raw, ok := env(name)
		raw = strings.TrimSpace(raw)
		return raw, ok && raw != ""
	}
	fail := func(s setting, kind, value string) {
		v.problems = append(v.problems, errors.New(s.name+" "+message(s, kind, value)))
	}
	for _, s := range settings {
		if only != nil && !slices.Contains(only, s.name) {
			continue
		}
		raw, given := lookup(s.name)
		if !given {
			raw = s.def
			if c, ok := computed[s.name]; ok {
				raw = c
			}
		}
		switch s.kind {
		case "integer":
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || n < s.min || n > s.max || !integerText.MatchString(raw) {
				fail(s, "integer", raw)
				n, _ = strconv.ParseInt(s.def, 10, 64)
			}
			v.num[s.name] = n
		case "boolean":
			switch lower := strings.ToLower(raw); {
			case slices.Contains(trueWords, lower):
				v.flag[s.name] = true
			case slices.Contains(falseWords, lower):
				v.flag[s.name] = false
			default:
				fail(s, "boolean", raw)
			}
		case "choice":
			value := raw
			if s.ignoreCase {
				value = strings.ToLower(raw)
			}
			if !slices.Contains(s.values, value) {
				fail(s, "choice", raw)
				value = s.def
			}
			v.text[s.name] = value
		case "file":
			if raw != "" {
				if _, err := readFile(raw); err != nil {
					fail(s, "file", raw)
				}
			}
			v.text[s.name] = raw
		case "secret":
			v.text[s.name] = v.secret(s, lookup, readFile, fail)
		default: // string
			if s.pattern != "" && raw != "" && !regexp.MustCompile(`^(?:`+s.pattern+`)$`).MatchString(raw) {
				fail(s, "pattern", raw)
			}
			if s.trimTrailingSlash {
				raw = strings.TrimRight(raw, "/")
			}
			switch {
			case raw == "" && s.required:
				fail(s, "required", "")
			case raw == "" && s.whenName != "" && v.text[s.whenName] == s.whenValue:
				fail(s, "required_when", "")
			}
			v.text[s.name] = raw
		}
	}
	return v
}

// secret reads NAME_FILE (which wins, as Docker secrets are files) or NAME. Problems name the
// variable and the file, never the value.
func (v *values) secret(s setting, lookup func(string) (string, bool), readFile ReadFile, fail func(setting, string, string)) string {
	fileVar := setting{name: s.name + "_FILE"}
	if path, ok := lookup(fileVar.name); ok {
		data, err := readFile(path)
		value := strings.TrimSpace(string(data))
		switch {
		case err != nil:
			fail(fileVar, "file_unreadable", path)
		case value == "":
			fail(fileVar, "file_empty", path)
		}
		return value
	}
	value, ok := lookup(s.name)
	if !ok && s.required {
		fail(s, "required_secret", "")
	}
	return value
}

// message fills the table's text for kind: {value} becomes the value as a JSON string.
func message(s setting, kind, value string) string {
	return strings.NewReplacer(
		"{value}", jsonString(value),
		"{min}", strconv.FormatInt(s.min, 10),
		"{max}", strconv.FormatInt(s.max, 10),
		"{values}", strings.Join(s.values, ", "),
		"{rule}", s.rule,
		"{name}", s.name,
		"{when_name}", s.whenName,
		"{when_value}", s.whenValue,
	).Replace(messages[kind])
}

func jsonString(value string) string {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(value) // a string always encodes
	return strings.TrimSuffix(out.String(), "\n")
}

// ParseLogLevel maps a level name of docs/protocol.md to its slog level.
// Only the exact lower-case names are accepted, as in the master.
func ParseLogLevel(name string) (slog.Level, bool) {
	switch name {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// DefaultWorkerID makes "go-<node>-<suffix>" (suffix: "[<task slot>-]<8 hex>") from the effective node name
// (NODE_HOSTNAME, else the host name), reduced to allowed characters and
// shortened so the whole id fits in 64 characters.
func DefaultWorkerID(node, suffix string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 128 && workerIDPattern.MatchString(string(r)) {
			return r
		}
		return '-'
	}, node)
	if clean == "" {
		clean = "host"
	}
	maxHost := 64 - len(Language) - len(suffix) - 2
	if len(clean) > maxHost {
		clean = clean[:maxHost]
	}
	return Language + "-" + clean + "-" + suffix
}

// randomHex8 is 32 random bits: ids of workers with one node name and slot
// (the old and new task of a rolling update) collide with odds of 2^-32.
func randomHex8() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
