package config

import (
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// load runs Load on a map of variables; files maps paths to contents for *_FILE and file settings.
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

// fields gives each setting's value in a Config as the table writes it, so defaults are
// compared with the table (settings_gen.go) rather than with a second copy of it.
func fields(c Config) map[string]string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	return map[string]string{
		"WORKER_ID": c.WorkerID, "NODE_HOSTNAME": c.Node, "TASK_SLOT": c.TaskSlot, "MQTT_HOST": c.MQTTHost, "MQTT_PORT": strconv.Itoa(c.MQTTPort),
		"MQTT_USERNAME": c.MQTTUsername, "MQTT_PASSWORD": c.MQTTPassword.Value(), "MQTT_TLS": strconv.FormatBool(c.MQTTTLS),
		"MQTT_CA_FILE": c.MQTTCAFile, "MQTT_TOPIC_PREFIX": c.TopicPrefix, "MASTER_GRPC_ADDR": c.MasterGRPCAddr,
		"GRPC_TOKEN": c.GRPCToken.Value(), "LLM_PROVIDER": c.LLMProvider, "GEMINI_API_KEY": c.GeminiAPIKey.Value(),
		"GEMINI_BASE_URL": c.GeminiBaseURL, "GEMINI_MODEL": c.GeminiModel, "OPENAI_BASE_URL": c.OpenAIBaseURL,
		"OPENAI_API_KEY": c.OpenAIAPIKey.Value(), "OPENAI_MODEL": c.OpenAIModel, "LLM_TIMEOUT_MS": ms(c.LLMTimeout),
		"SIMULATED_WORK_MS": ms(c.SimulatedWork), "HEARTBEAT_INTERVAL_MS": ms(c.HeartbeatInterval),
		"RESULT_RETRY_DEADLINE_MS": ms(c.ResultRetryDeadline), "SHUTDOWN_GRACE_MS": ms(c.ShutdownGrace),
		"HEALTH_FILE": c.HealthFile, "LOG_LEVEL": strings.ToLower(c.LogLevel.String()),
	}
}

func TestEverySettingOfTheTableIsAConfigField(t *testing.T) {
	got := fields(Config{})
	for _, s := range settings {
		if _, ok := got[s.name]; !ok {
			t.Errorf("%s is in proto/worker-settings.json but not read into Config", s.name)
		}
	}
	if len(got) != len(settings) {
		t.Errorf("Config has %d settings, the table %d", len(got), len(settings))
	}
}

func TestDefaultsAreTheTables(t *testing.T) {
	c, err := load(t, map[string]string{"GRPC_TOKEN": "tok"}, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	got := fields(c)
	for _, s := range settings {
		if s.def != "" && got[s.name] != s.def {
			t.Errorf("%s = %q, the table's default is %q", s.name, got[s.name], s.def)
		}
	}
	if c.Node != "vm2" || !regexp.MustCompile(`^go-vm2-[0-9a-f]{8}$`).MatchString(c.WorkerID) {
		t.Errorf("computed defaults: node %q, worker id %q (want vm2, go-vm2-<8 hex>)", c.Node, c.WorkerID)
	}
	if c.OpenAIBaseURL != "" || c.MQTTUsername != "" || c.MQTTCAFile != "" || c.GeminiAPIKey.IsSet() {
		t.Errorf("settings without a default are not empty: %+v", c)
	}
}

func TestExplicitValues(t *testing.T) {
	c, err := load(t, map[string]string{
		"GRPC_TOKEN": "tok", "WORKER_ID": "go-a_b.c", "NODE_HOSTNAME": "vm7",
		"MQTT_HOST": "127.0.0.1", "MQTT_PORT": "18830", "MQTT_TLS": "TRUE", "MQTT_CA_FILE": "/ca.pem",
		"MQTT_TOPIC_PREFIX": "lab/x", "LLM_PROVIDER": "OpenAI", "MASTER_GRPC_ADDR": "[::1]:9",
		"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/", "LLM_TIMEOUT_MS": " 1500 ",
		"SIMULATED_WORK_MS": "0", "LOG_LEVEL": "warn",
	}, map[string]string{"/ca.pem": "pem"})
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if c.WorkerID != "go-a_b.c" || c.Node != "vm7" || c.MQTTPort != 18830 || !c.MQTTTLS || c.MQTTCAFile != "/ca.pem" ||
		c.TopicPrefix != "lab/x" || c.LLMProvider != "openai" || c.LLMTimeout != 1500*time.Millisecond ||
		c.SimulatedWork != 0 || c.MasterGRPCAddr != "[::1]:9" || c.LogLevel != slog.LevelWarn {
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

func TestEachBadValueGetsTheContractMessage(t *testing.T) {
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"GRPC_TOKEN": ""}, `GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)`},
		{map[string]string{"GRPC_TOKEN_FILE": "/nope"}, `GRPC_TOKEN_FILE names a file that cannot be read: "/nope"`},
		{map[string]string{"GRPC_TOKEN_FILE": "/empty"}, `GRPC_TOKEN_FILE names an empty file: "/empty"`},
		{map[string]string{"WORKER_ID": "bad id!"}, `WORKER_ID must be 1 to 64 characters of [A-Za-z0-9_.-], got "bad id!"`},
		{map[string]string{"WORKER_ID": strings.Repeat("a", 65)}, `WORKER_ID must be 1 to 64 characters of [A-Za-z0-9_.-], got "` + strings.Repeat("a", 65) + `"`},
		{map[string]string{"MQTT_PORT": "abc"}, `MQTT_PORT must be an integer from 1 to 65535, got "abc"`},
		{map[string]string{"MQTT_PORT": "70000"}, `MQTT_PORT must be an integer from 1 to 65535, got "70000"`},
		{map[string]string{"MQTT_PORT": "+80"}, `MQTT_PORT must be an integer from 1 to 65535, got "+80"`},
		{map[string]string{"MQTT_TLS": "maybe"}, `MQTT_TLS must be true or false, got "maybe"`},
		{map[string]string{"MQTT_CA_FILE": "/missing.pem"}, `MQTT_CA_FILE must name a readable file, got "/missing.pem"`},
		{map[string]string{"MQTT_TOPIC_PREFIX": "a/#"}, `MQTT_TOPIC_PREFIX must be a topic prefix without wildcards (+, #) or leading/trailing '/', got "a/#"`},
		{map[string]string{"MASTER_GRPC_ADDR": "master"}, `MASTER_GRPC_ADDR must be host:port, got "master"`},
		{map[string]string{"LLM_PROVIDER": "claude"}, `LLM_PROVIDER must be one of auto, gemini, openai, offline, got "claude"`},
		{map[string]string{"LLM_PROVIDER": "openai"}, `OPENAI_BASE_URL is required when LLM_PROVIDER=openai`},
		{map[string]string{"OPENAI_BASE_URL": "ftp://x"}, `OPENAI_BASE_URL must be an http:// or https:// URL, got "ftp://x"`},
		{map[string]string{"GEMINI_BASE_URL": "not a url"}, `GEMINI_BASE_URL must be an http:// or https:// URL, got "not a url"`},
		{map[string]string{"GEMINI_MODEL": "two words"}, `GEMINI_MODEL must be a model name without spaces, '?' or '#', got "two words"`},
		{map[string]string{"LLM_TIMEOUT_MS": "0"}, `LLM_TIMEOUT_MS must be an integer from 1 to 2147483647, got "0"`},
		{map[string]string{"SIMULATED_WORK_MS": "-1"}, `SIMULATED_WORK_MS must be an integer from 0 to 2147483647, got "-1"`},
		{map[string]string{"HEARTBEAT_INTERVAL_MS": "1.5"}, `HEARTBEAT_INTERVAL_MS must be an integer from 1 to 2147483647, got "1.5"`},
		{map[string]string{"RESULT_RETRY_DEADLINE_MS": "99999999999999999999"}, `RESULT_RETRY_DEADLINE_MS must be an integer from 0 to 2147483647, got "99999999999999999999"`},
		{map[string]string{"LOG_LEVEL": "WARN"}, `LOG_LEVEL must be one of debug, info, warn, error, got "WARN"`},
		{map[string]string{"LOG_LEVEL": `say "hi"`}, `LOG_LEVEL must be one of debug, info, warn, error, got "say \"hi\""`},
	}
	for _, tc := range cases {
		vars := map[string]string{"GRPC_TOKEN": "tok"}
		for k, v := range tc.vars {
			vars[k] = v
		}
		_, err := load(t, vars, map[string]string{"/empty": " \n"})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want exactly %q", tc.vars, err, tc.want)
		}
	}
}

func TestAllProblemsAreReportedInTheTablesOrder(t *testing.T) {
	_, err := load(t, map[string]string{"LOG_LEVEL": "loud", "MQTT_PORT": "x", "LLM_TIMEOUT_MS": "y"}, nil)
	want := strings.Join([]string{
		`MQTT_PORT must be an integer from 1 to 65535, got "x"`,
		`GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)`,
		`LLM_TIMEOUT_MS must be an integer from 1 to 2147483647, got "y"`,
		`LOG_LEVEL must be one of debug, info, warn, error, got "loud"`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

func TestEmptyCountsAsUnset(t *testing.T) {
	c, err := load(t, map[string]string{"GRPC_TOKEN": "tok", "LOG_LEVEL": " ", "MQTT_PORT": "", "WORKER_ID": ""}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != slog.LevelInfo || c.MQTTPort != 1883 || !strings.HasPrefix(c.WorkerID, "go-vm2-") {
		t.Errorf("empty values not taken as unset: %+v", c)
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
	_, err = load(t, map[string]string{"GRPC_TOKEN": "tok-SECRET", "MQTT_PORT": "x"}, nil)
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("unexpected error %v", err)
	}
}

func TestDefaultWorkerIDUsesTheNodeName(t *testing.T) {
	node := "vm 7/ü" + strings.Repeat("n", 80)
	c, err := load(t, map[string]string{"GRPC_TOKEN": "tok", "WORKER_ID": "", "NODE_HOSTNAME": node}, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	prefix := ("go-vm-7--" + strings.Repeat("n", 80))[:64-9]
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-[0-9a-f]{8}$`)
	if !re.MatchString(c.WorkerID) || len(c.WorkerID) != 64 || !ValidWorkerID(c.WorkerID) {
		t.Errorf("default WorkerID = %q, want %s-<8 hex> (64 chars)", c.WorkerID, prefix)
	}
}

func TestDefaultWorkerIDHasTheTaskSlot(t *testing.T) {
	c, err := load(t, map[string]string{"GRPC_TOKEN": "tok", "NODE_HOSTNAME": "vm7", "TASK_SLOT": "12"}, nil)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !regexp.MustCompile(`^go-vm7-12-[0-9a-f]{8}$`).MatchString(c.WorkerID) {
		t.Errorf("default WorkerID = %q, want go-vm7-12-<8 hex>", c.WorkerID)
	}
	_, err = load(t, map[string]string{"GRPC_TOKEN": "tok", "TASK_SLOT": "3 x"}, nil)
	if err == nil || err.Error() != `TASK_SLOT must be 1 to 10 digits, got "3 x"` {
		t.Errorf("bad TASK_SLOT: error %v", err)
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
		v, ok := map[string]string{"HEALTH_FILE": "/tmp/h", "HEARTBEAT_INTERVAL_MS": "500", "GRPC_TOKEN_FILE": "/nope"}[name]
		return v, ok
	}
	file, hb, err := HealthSettings(env)
	if err != nil || file != "/tmp/h" || hb != 500*time.Millisecond {
		t.Errorf("HealthSettings = %q %v %v", file, hb, err)
	}
	_, _, err = HealthSettings(func(name string) (string, bool) { return "x", name == "HEARTBEAT_INTERVAL_MS" })
	if err == nil || err.Error() != `HEARTBEAT_INTERVAL_MS must be an integer from 1 to 2147483647, got "x"` {
		t.Errorf("bad interval not reported: %v", err)
	}
}
