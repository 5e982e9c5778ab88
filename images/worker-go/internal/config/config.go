// Package config reads and validates the worker's environment, exactly as
// listed in docs/protocol.md ("Worker environment"). It does no network I/O:
// Load takes the environment and a file reader as arguments, so every rule is
// unit-tested without touching the real process environment.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/provider"
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

// ReadFile reads a file named by a *_FILE variable.
type ReadFile func(path string) ([]byte, error)

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ValidWorkerID says whether id is 1 to 64 characters of [A-Za-z0-9_.-].
func ValidWorkerID(id string) bool { return workerIDPattern.MatchString(id) }

// Load builds the configuration from env. hostname is the machine's host name
// (the default node and part of the default worker id). Every problem found is
// reported, each naming its variable.
func Load(env Env, readFile ReadFile, hostname string) (Config, error) {
	r := reader{env: env, readFile: readFile}
	c := Config{
		Node:           r.str("NODE_HOSTNAME", hostname),
		MQTTHost:       r.str("MQTT_HOST", "mosquitto"),
		MQTTPort:       r.port("MQTT_PORT", 1883),
		MQTTUsername:   r.str("MQTT_USERNAME", ""),
		MQTTPassword:   r.secret("MQTT_PASSWORD"),
		MQTTTLS:        r.boolean("MQTT_TLS", false),
		MQTTCAFile:     r.str("MQTT_CA_FILE", ""),
		TopicPrefix:    r.topicPrefix("MQTT_TOPIC_PREFIX", "ai-system"),
		MasterGRPCAddr: r.str("MASTER_GRPC_ADDR", "master:50051"),
		GRPCToken:      r.secret("GRPC_TOKEN"),
		LLMProvider:    r.oneOf("LLM_PROVIDER", provider.ModeAuto, provider.ModeAuto, provider.ModeGemini, provider.ModeOpenAI, provider.ModeOffline),
		GeminiAPIKey:   r.secret("GEMINI_API_KEY"),
		GeminiBaseURL:  r.baseURL("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"),
		GeminiModel:    r.str("GEMINI_MODEL", "gemini-2.5-flash"),
		OpenAIBaseURL:  r.baseURL("OPENAI_BASE_URL", ""),
		OpenAIAPIKey:   r.secret("OPENAI_API_KEY"),
		OpenAIModel:    r.str("OPENAI_MODEL", "llama3.2"),

		LLMTimeout:          r.millis("LLM_TIMEOUT_MS", 30000, 1),
		SimulatedWork:       r.millis("SIMULATED_WORK_MS", 10000, 0),
		HeartbeatInterval:   r.millis("HEARTBEAT_INTERVAL_MS", 2000, 1),
		ResultRetryDeadline: r.millis("RESULT_RETRY_DEADLINE_MS", 120000, 0),
		ShutdownGrace:       r.millis("SHUTDOWN_GRACE_MS", 20000, 0),
		HealthFile:          r.str("HEALTH_FILE", "/tmp/worker.health"),
		LogLevel:            r.logLevel("LOG_LEVEL", slog.LevelInfo),
	}
	c.WorkerID = r.workerID("WORKER_ID", c.Node)

	if c.GRPCToken == "" {
		r.fail("GRPC_TOKEN", "is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)")
	}
	if c.Node == "" {
		r.fail("NODE_HOSTNAME", "is empty and the host name is unknown")
	}
	if c.LLMProvider == provider.ModeOpenAI && c.OpenAIBaseURL == "" {
		r.fail("OPENAI_BASE_URL", "is required when LLM_PROVIDER=openai")
	}
	return c, errors.Join(r.errs...)
}

// HealthSettings reads only what `worker -healthcheck` needs, so the
// healthcheck does not depend on secrets or other variables being readable.
func HealthSettings(env Env) (healthFile string, heartbeat time.Duration, err error) {
	r := reader{env: env}
	healthFile = r.str("HEALTH_FILE", "/tmp/worker.health")
	heartbeat = r.millis("HEARTBEAT_INTERVAL_MS", 2000, 1)
	return healthFile, heartbeat, errors.Join(r.errs...)
}

// reader reads variables and collects every problem instead of stopping at
// the first one. An empty value counts as unset, so `VAR=` in a compose file
// means "use the default".
type reader struct {
	env      Env
	readFile ReadFile
	errs     []error
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
}

func (r *reader) lookup(name string) (string, bool) {
	v, ok := r.env(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (r *reader) str(name, def string) string {
	if v, ok := r.lookup(name); ok {
		return v
	}
	return def
}

// secret reads NAME_FILE (which wins, as Docker secrets are files) or NAME.
// Errors name the variable, never the value.
func (r *reader) secret(name string) Secret {
	if path, ok := r.lookup(name + "_FILE"); ok {
		data, err := r.readFile(path)
		if err != nil {
			r.fail(name+"_FILE", "names a file that cannot be read: %v", err)
			return ""
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			r.fail(name+"_FILE", "names an empty file")
		}
		return Secret(v)
	}
	v, _ := r.lookup(name)
	return Secret(v)
}

func (r *reader) millis(name string, def, min int) time.Duration {
	v, ok := r.lookup(name)
	if !ok {
		return time.Duration(def) * time.Millisecond
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		r.fail(name, "must be an integer number of milliseconds >= %d, got %q", min, v)
		return time.Duration(def) * time.Millisecond
	}
	return time.Duration(n) * time.Millisecond
}

func (r *reader) port(name string, def int) int {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		r.fail(name, "must be a port number from 1 to 65535, got %q", v)
		return def
	}
	return n
}

func (r *reader) boolean(name string, def bool) bool {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
		return false
	}
	r.fail(name, "must be true or false, got %q", v)
	return def
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

// LogLevelNames are the LOG_LEVEL values, lowest first; they are also the
// "level" values of log events (docs/protocol.md).
var LogLevelNames = []string{"debug", "info", "warn", "error"}

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

func (r *reader) logLevel(name string, def slog.Level) slog.Level {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	level, ok := ParseLogLevel(v)
	if !ok {
		r.fail(name, "must be one of %s, got %q", strings.Join(LogLevelNames, ", "), v)
		return def
	}
	return level
}

// topicPrefix rejects MQTT wildcards and empty levels, which would make the
// worker subscribe to or publish on topics that are not its own.
func (r *reader) topicPrefix(name, def string) string {
	v := r.str(name, def)
	if strings.ContainsAny(v, "+#\x00") || strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") {
		r.fail(name, "must be a topic prefix without wildcards (+, #) or leading/trailing '/', got %q", v)
		return def
	}
	return v
}

// baseURL accepts an http(s) URL and drops a trailing slash, so paths can be
// appended as "{base}/v1beta/...".
func (r *reader) baseURL(name, def string) string {
	v := r.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "must be an http:// or https:// URL")
		return def
	}
	return strings.TrimRight(v, "/")
}

func (r *reader) workerID(name, node string) string {
	if v, ok := r.lookup(name); ok {
		if !ValidWorkerID(v) {
			r.fail(name, "must be 1 to 64 characters of [A-Za-z0-9_.-], got %q", v)
		}
		return v
	}
	return DefaultWorkerID(node, randomHex4())
}

// DefaultWorkerID makes "go-<node>-<suffix>" from the effective node name
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

func randomHex4() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
