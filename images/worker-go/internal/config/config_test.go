package config

import (
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// load runs Load on a map of variables; files maps paths to contents for *_FILE.
func load(t *testing.T, vars map[string]string, files map[string]string) (Config, error) {
	t.Helper()
	env := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	readFile := func(path string) ([]byte, error) {
		if data, ok := files[path]; ok {
			return []byte(data), nil
		}
		return nil, fmt.Errorf("open %s: %w", path, fs.ErrNotExist)
	}
	return Load(env, readFile, "vm2")
}

func TestDefaults(t *testing.T) {
	c, err := load(t, map[string]string{"GRPC_TOKEN": "tok"}, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Node", c.Node, "vm2"},
		{"MQTTHost", c.MQTTHost, "mosquitto"},
		{"MQTTPort", c.MQTTPort, 1883},
		{"MQTTTLS", c.MQTTTLS, false},
		{"TopicPrefix", c.TopicPrefix, "ai-system"},
		{"MasterGRPCAddr", c.MasterGRPCAddr, "master:50051"},
		{"LLMProvider", c.LLMProvider, "auto"},
		{"GeminiBaseURL", c.GeminiBaseURL, "https://generativelanguage.googleapis.com"},
		{"GeminiModel", c.GeminiModel, "gemini-2.5-flash"},
		{"OpenAIBaseURL", c.OpenAIBaseURL, ""},
		{"OpenAIModel", c.OpenAIModel, "llama3.2"},
		{"LLMTimeout", c.LLMTimeout, 30 * time.Second},
		{"SimulatedWork", c.SimulatedWork, 10 * time.Second},
		{"HeartbeatInterval", c.HeartbeatInterval, 2 * time.Second},
		{"ResultRetryDeadline", c.ResultRetryDeadline, 120 * time.Second},
		{"ShutdownGrace", c.ShutdownGrace, 20 * time.Second},
		{"HealthFile", c.HealthFile, "/tmp/worker.health"},
		{"GRPCToken", c.GRPCToken.Value(), "tok"},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if !strings.HasPrefix(c.WorkerID, "go-vm2-") || len(c.WorkerID) != len("go-vm2-")+4 || !ValidWorkerID(c.WorkerID) {
		t.Errorf("default WorkerID = %q, want go-vm2-<4 hex>", c.WorkerID)
	}
}

func TestExplicitValues(t *testing.T) {
	c, err := load(t, map[string]string{
		"GRPC_TOKEN": "tok", "WORKER_ID": "go-a_b.c", "NODE_HOSTNAME": "vm7",
		"MQTT_HOST": "127.0.0.1", "MQTT_PORT": "18830", "MQTT_TLS": "TRUE",
		"MQTT_TOPIC_PREFIX": "lab/x", "LLM_PROVIDER": "openai",
		"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/", "LLM_TIMEOUT_MS": "1500",
		"SIMULATED_WORK_MS": "0",
	}, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if c.WorkerID != "go-a_b.c" || c.Node != "vm7" || c.MQTTPort != 18830 || !c.MQTTTLS ||
		c.TopicPrefix != "lab/x" || c.LLMProvider != "openai" || c.LLMTimeout != 1500*time.Millisecond ||
		c.SimulatedWork != 0 {
		t.Errorf("values not taken: %+v", c)
	}
	if c.OpenAIBaseURL != "http://127.0.0.1:9/v1" {
		t.Errorf("trailing slash not dropped: %q", c.OpenAIBaseURL)
	}
}

func TestFileWinsOverPlainVariable(t *testing.T) {
	c, err := load(t, map[string]string{
		"GRPC_TOKEN": "plain", "GRPC_TOKEN_FILE": "/run/secrets/token",
		"GEMINI_API_KEY_FILE": "/run/secrets/gemini", "MQTT_PASSWORD_FILE": "/run/secrets/mqtt",
	}, map[string]string{
		"/run/secrets/token": "from-file\n", "/run/secrets/gemini": "gkey", "/run/secrets/mqtt": "pw\n",
	})
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if c.GRPCToken.Value() != "from-file" || c.GeminiAPIKey.Value() != "gkey" || c.MQTTPassword.Value() != "pw" {
		t.Errorf("file values not used (token=%q gemini=%q mqtt=%q)", c.GRPCToken.Value(), c.GeminiAPIKey.Value(), c.MQTTPassword.Value())
	}
}

func TestBadValuesNameTheirVariable(t *testing.T) {
	cases := []struct {
		vars    map[string]string
		wantVar string
	}{
		{map[string]string{}, "GRPC_TOKEN"},
		{map[string]string{"GRPC_TOKEN_FILE": "/nope"}, "GRPC_TOKEN_FILE"},
		{map[string]string{"WORKER_ID": "bad id!"}, "WORKER_ID"},
		{map[string]string{"WORKER_ID": strings.Repeat("a", 65)}, "WORKER_ID"},
		{map[string]string{"MQTT_PORT": "abc"}, "MQTT_PORT"},
		{map[string]string{"MQTT_PORT": "70000"}, "MQTT_PORT"},
		{map[string]string{"MQTT_TLS": "maybe"}, "MQTT_TLS"},
		{map[string]string{"MQTT_TOPIC_PREFIX": "a/#"}, "MQTT_TOPIC_PREFIX"},
		{map[string]string{"LLM_PROVIDER": "claude"}, "LLM_PROVIDER"},
		{map[string]string{"LLM_PROVIDER": "openai"}, "OPENAI_BASE_URL"},
		{map[string]string{"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"},
		{map[string]string{"GEMINI_BASE_URL": "not a url"}, "GEMINI_BASE_URL"},
		{map[string]string{"LLM_TIMEOUT_MS": "ten"}, "LLM_TIMEOUT_MS"},
		{map[string]string{"LLM_TIMEOUT_MS": "0"}, "LLM_TIMEOUT_MS"},
		{map[string]string{"SIMULATED_WORK_MS": "-1"}, "SIMULATED_WORK_MS"},
		{map[string]string{"HEARTBEAT_INTERVAL_MS": "1.5"}, "HEARTBEAT_INTERVAL_MS"},
		{map[string]string{"RESULT_RETRY_DEADLINE_MS": "x"}, "RESULT_RETRY_DEADLINE_MS"},
		{map[string]string{"SHUTDOWN_GRACE_MS": "x"}, "SHUTDOWN_GRACE_MS"},
	}
	for _, tc := range cases {
		vars := map[string]string{"GRPC_TOKEN": "tok"}
		for k, v := range tc.vars {
			vars[k] = v
		}
		if tc.wantVar == "GRPC_TOKEN" {
			delete(vars, "GRPC_TOKEN")
		}
		_, err := load(t, vars, nil)
		if err == nil {
			t.Errorf("%v: no error, want one naming %s", tc.vars, tc.wantVar)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantVar) {
			t.Errorf("%v: error %q does not name %s", tc.vars, err, tc.wantVar)
		}
	}
}

func TestLogLevelValues(t *testing.T) {
	cases := map[string]slog.Level{
		"debug": slog.LevelDebug,
		"info":  slog.LevelInfo,
		"warn":  slog.LevelWarn,
		"error": slog.LevelError,
		" warn": slog.LevelWarn, // surrounding blanks are trimmed like everywhere
		"":      slog.LevelInfo, // empty counts as unset: the default
	}
	for value, want := range cases {
		c, err := load(t, map[string]string{"GRPC_TOKEN": "tok", "LOG_LEVEL": value}, nil)
		if err != nil {
			t.Errorf("LOG_LEVEL=%q: unexpected error %v", value, err)
			continue
		}
		if c.LogLevel != want {
			t.Errorf("LOG_LEVEL=%q gave %v, want %v", value, c.LogLevel, want)
		}
	}
}

func TestBadLogLevelNamesTheVariableAndTheAllowedValues(t *testing.T) {
	for _, value := range []string{"verbose", "WARN", "warning", "3"} {
		_, err := load(t, map[string]string{"GRPC_TOKEN": "tok", "LOG_LEVEL": value}, nil)
		if err == nil {
			t.Errorf("LOG_LEVEL=%q: no error", value)
			continue
		}
		want := fmt.Sprintf("LOG_LEVEL must be one of debug, info, warn, error, got %q", value)
		if err.Error() != want {
			t.Errorf("LOG_LEVEL=%q: error %q, want %q", value, err, want)
		}
	}
}

func TestAllProblemsAreReported(t *testing.T) {
	_, err := load(t, map[string]string{"MQTT_PORT": "x", "LLM_TIMEOUT_MS": "y"}, nil)
	for _, name := range []string{"GRPC_TOKEN", "MQTT_PORT", "LLM_TIMEOUT_MS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c, err := load(t, map[string]string{
		"GRPC_TOKEN": "tok-SECRET", "GEMINI_API_KEY": "gem-SECRET", "OPENAI_API_KEY": "oai-SECRET",
		"MQTT_PASSWORD": "pw-SECRET",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(text, "SECRET") {
			t.Errorf("a secret is visible in %q", text)
		}
	}
	// A file that cannot be read is reported by variable, not by content.
	_, err = load(t, map[string]string{"GRPC_TOKEN_FILE": "/missing"}, nil)
	if err == nil || !strings.Contains(err.Error(), "GRPC_TOKEN_FILE") {
		t.Errorf("unexpected error %v", err)
	}
}

func TestDefaultWorkerIDUsesTheNodeName(t *testing.T) {
	node := "vm 7/ü" + strings.Repeat("n", 80)
	c, err := load(t, map[string]string{"GRPC_TOKEN": "tok", "WORKER_ID": "", "NODE_HOSTNAME": node}, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	prefix := ("go-vm-7--" + strings.Repeat("n", 80))[:64-5]
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-[0-9a-f]{4}$`)
	if !re.MatchString(c.WorkerID) || len(c.WorkerID) != 64 || !ValidWorkerID(c.WorkerID) {
		t.Errorf("default WorkerID = %q, want %s-<4 hex> (64 chars)", c.WorkerID, prefix)
	}
}

func TestDefaultWorkerIDFitsTheFormat(t *testing.T) {
	cases := map[string]string{
		"vm2":                   "go-vm2-1a2b",
		"host with spaces/ü":    "go-host-with-spaces---1a2b",
		"":                      "go-host-1a2b",
		strings.Repeat("h", 80): "go-" + strings.Repeat("h", 64-3-5) + "-1a2b",
	}
	for host, want := range cases {
		got := DefaultWorkerID(host, "1a2b")
		if got != want || !ValidWorkerID(got) {
			t.Errorf("DefaultWorkerID(%q) = %q (valid=%t), want %q", host, got, ValidWorkerID(got), want)
		}
	}
}

func TestHealthSettings(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"HEALTH_FILE": "/tmp/h", "HEARTBEAT_INTERVAL_MS": "500"}[name]
		return v, ok
	}
	file, hb, err := HealthSettings(env)
	if err != nil || file != "/tmp/h" || hb != 500*time.Millisecond {
		t.Errorf("HealthSettings = %q %v %v", file, hb, err)
	}
	_, _, err = HealthSettings(func(name string) (string, bool) { return "x", name == "HEARTBEAT_INTERVAL_MS" })
	if err == nil || !strings.Contains(err.Error(), "HEARTBEAT_INTERVAL_MS") {
		t.Errorf("bad interval not reported: %v", err)
	}
}
