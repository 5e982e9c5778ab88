package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ConfigLoaderTest {
    private static final Map<String, String> FILES = Map.of(
            "/run/secrets/token", "file-token\n",
            "/run/secrets/gemini", "  file-gemini-key  \n",
            "/run/secrets/empty", "\n",
            "/ca.pem", "pem");

    private static Config load(Map<String, String> env) throws ConfigException {
        return ConfigLoader.load(env, ConfigLoaderTest::readFake, "vm2", "1a2b");
    }

    private static String readFake(Path path) throws IOException {
        String content = FILES.get(path.toString());
        if (content == null) {
            throw new NoSuchFileException(path.toString());
        }
        return content;
    }

    private static Map<String, String> env(String... pairs) {
        Map<String, String> env = new HashMap<>();
        env.put("GRPC_TOKEN", "tok");
        for (int i = 0; i < pairs.length; i += 2) {
            env.put(pairs[i], pairs[i + 1]);
        }
        return env;
    }

    private static List<String> problems(Map<String, String> env) {
        return assertThrows(ConfigException.class, () -> load(env)).problems();
    }

    /** Each setting's value in a Config as the table writes it, by variable name. */
    private static Map<String, String> fields(Config c) {
        Map<String, String> f = new HashMap<>();
        f.put("WORKER_ID", c.workerId());
        f.put("NODE_HOSTNAME", c.nodeHostname());
        f.put("TASK_SLOT", c.taskSlot());
        f.put("MQTT_HOST", c.mqttHost());
        f.put("MQTT_PORT", Integer.toString(c.mqttPort()));
        f.put("MQTT_USERNAME", c.mqttUsername());
        f.put("MQTT_PASSWORD", c.mqttPassword());
        f.put("MQTT_TLS", Boolean.toString(c.mqttTls()));
        f.put("MQTT_CA_FILE", c.mqttCaFile() == null ? null : c.mqttCaFile().toString());
        f.put("MQTT_TOPIC_PREFIX", c.topicPrefix());
        f.put("MASTER_GRPC_ADDR", c.masterGrpcAddr());
        f.put("GRPC_TOKEN", c.grpcToken());
        f.put("LLM_PROVIDER", c.llmProvider().wireName());
        f.put("GEMINI_API_KEY", c.geminiApiKey());
        f.put("GEMINI_BASE_URL", c.geminiBaseUrl());
        f.put("GEMINI_MODEL", c.geminiModel());
        f.put("OPENAI_BASE_URL", c.openaiBaseUrl());
        f.put("OPENAI_API_KEY", c.openaiApiKey());
        f.put("OPENAI_MODEL", c.openaiModel());
        f.put("LLM_TIMEOUT_MS", Long.toString(c.llmTimeoutMs()));
        f.put("SIMULATED_WORK_MS", Long.toString(c.simulatedWorkMs()));
        f.put("HEARTBEAT_INTERVAL_MS", Long.toString(c.heartbeatIntervalMs()));
        f.put("RESULT_RETRY_DEADLINE_MS", Long.toString(c.resultRetryDeadlineMs()));
        f.put("SHUTDOWN_GRACE_MS", Long.toString(c.shutdownGraceMs()));
        f.put("HEALTH_FILE", c.healthFile().toString());
        f.put("LOG_LEVEL", c.logLevel().wireName());
        return f;
    }

    @Test
    void everySettingOfTheTableIsAConfigField() throws ConfigException {
        Set<String> table = WorkerSettings.ALL.stream().map(WorkerSettings.Setting::name).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(table, new TreeSet<>(fields(load(env())).keySet()));
        assertEquals(table.size(), Config.class.getRecordComponents().length);
    }

    @Test
    void defaultsAreTheTables() throws ConfigException {
        Map<String, String> got = fields(load(env()));
        for (WorkerSettings.Setting s : WorkerSettings.ALL) {
            if (s.defaultValue() != null) {
                assertEquals(s.defaultValue(), got.get(s.name()), s.name());
            }
        }
        assertEquals("java-vm2-1a2b", got.get("WORKER_ID"));
        assertEquals("vm2", got.get("NODE_HOSTNAME"));
        assertNull(got.get("OPENAI_BASE_URL"));
        assertNull(got.get("MQTT_CA_FILE"));
        assertNull(got.get("MQTT_PASSWORD"));
    }

    @Test
    void everyVariableIsRead() throws ConfigException {
        Config c = load(env("WORKER_ID", "w.1_A-b", "NODE_HOSTNAME", "vm7", "TASK_SLOT", " 4 ", "MQTT_HOST", "broker",
                "MQTT_PORT", " 8883 ", "MQTT_USERNAME", "u", "MQTT_PASSWORD", "p", "MQTT_TLS", "YES",
                "MQTT_CA_FILE", "/ca.pem", "MQTT_TOPIC_PREFIX", "lab/x", "MASTER_GRPC_ADDR", "[::1]:9",
                "LLM_PROVIDER", "OpenAI", "GEMINI_API_KEY", "g", "GEMINI_BASE_URL", "http://127.0.0.1:1/",
                "GEMINI_MODEL", "m1", "OPENAI_BASE_URL", "http://127.0.0.1:2/v1/", "OPENAI_API_KEY", "o",
                "OPENAI_MODEL", "m2", "LLM_TIMEOUT_MS", "5", "SIMULATED_WORK_MS", "0",
                "HEARTBEAT_INTERVAL_MS", "100", "RESULT_RETRY_DEADLINE_MS", "0", "SHUTDOWN_GRACE_MS", "7",
                "HEALTH_FILE", "/tmp/h", "LOG_LEVEL", "warn"));
        Map<String, String> expected = new HashMap<>(Map.ofEntries(
                Map.entry("WORKER_ID", "w.1_A-b"), Map.entry("NODE_HOSTNAME", "vm7"), Map.entry("TASK_SLOT", "4"),
                Map.entry("MQTT_HOST", "broker"),
                Map.entry("MQTT_PORT", "8883"), Map.entry("MQTT_USERNAME", "u"), Map.entry("MQTT_PASSWORD", "p"),
                Map.entry("MQTT_TLS", "true"), Map.entry("MQTT_CA_FILE", "/ca.pem"), Map.entry("MQTT_TOPIC_PREFIX", "lab/x"),
                Map.entry("MASTER_GRPC_ADDR", "[::1]:9"), Map.entry("GRPC_TOKEN", "tok"), Map.entry("LLM_PROVIDER", "openai"),
                Map.entry("GEMINI_API_KEY", "g"), Map.entry("GEMINI_BASE_URL", "http://127.0.0.1:1"),
                Map.entry("GEMINI_MODEL", "m1"), Map.entry("OPENAI_BASE_URL", "http://127.0.0.1:2/v1"),
                Map.entry("OPENAI_API_KEY", "o"), Map.entry("OPENAI_MODEL", "m2"), Map.entry("LLM_TIMEOUT_MS", "5"),
                Map.entry("SIMULATED_WORK_MS", "0"), Map.entry("HEARTBEAT_INTERVAL_MS", "100"),
                Map.entry("RESULT_RETRY_DEADLINE_MS", "0"), Map.entry("SHUTDOWN_GRACE_MS", "7"),
                Map.entry("HEALTH_FILE", "/tmp/h"), Map.entry("LOG_LEVEL", "warn")));
        assertEquals(expected, fields(c));
    }

    @ParameterizedTest(name = "LOG_LEVEL={0}")
    @CsvSource({"debug,DEBUG", "info,INFO", "warn,WARN", "error,ERROR", "'',INFO"})
    void logLevelTakesEachOfTheFourLevels(String value, LogLevel expected) throws ConfigException {
        assertEquals(expected, load(env("LOG_LEVEL", value)).logLevel());
    }

    @Test
    void fileVariableWinsOverItsPlainTwinAndIsTrimmed() throws ConfigException {
        Config c = load(env("GRPC_TOKEN_FILE", "/run/secrets/token", "GEMINI_API_KEY", "plain",
                "GEMINI_API_KEY_FILE", "/run/secrets/gemini"));
        assertEquals("file-token", c.grpcToken());
        assertEquals("file-gemini-key", c.geminiApiKey());
    }

    @Test
    void emptyVariablesCountAsUnset() throws ConfigException {
        Config c = load(env("WORKER_ID", "", "MQTT_PORT", " ", "OPENAI_BASE_URL", ""));
        assertEquals("java-vm2-1a2b", c.workerId());
        assertEquals(1883, c.mqttPort());
        assertNull(c.openaiBaseUrl());
    }

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
        "GRPC_TOKEN|``|GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)",
        "GRPC_TOKEN_FILE|/run/secrets/missing|GRPC_TOKEN_FILE names a file that cannot be read: \"/run/secrets/missing\"",
        "GRPC_TOKEN_FILE|/run/secrets/empty|GRPC_TOKEN_FILE names an empty file: \"/run/secrets/empty\"",
        "WORKER_ID|bad id!|WORKER_ID must be 1 to 64 characters of [A-Za-z0-9_.-], got \"bad id!\"",
        "MQTT_PORT|abc|MQTT_PORT must be an integer from 1 to 65535, got \"abc\"",
        "MQTT_PORT|0|MQTT_PORT must be an integer from 1 to 65535, got \"0\"",
        "MQTT_PORT|+80|MQTT_PORT must be an integer from 1 to 65535, got \"+80\"",
        "MQTT_PORT|\u0663|MQTT_PORT must be an integer from 1 to 65535, got \"\u0663\"",
        "MQTT_TLS|maybe|MQTT_TLS must be true or false, got \"maybe\"",
        "MQTT_CA_FILE|/missing.pem|MQTT_CA_FILE must name a readable file, got \"/missing.pem\"",
        "MQTT_TOPIC_PREFIX|a/#|MQTT_TOPIC_PREFIX must be a topic prefix without wildcards (+, #) or leading/trailing '/', got \"a/#\"",
        "MASTER_GRPC_ADDR|master|MASTER_GRPC_ADDR must be host:port, got \"master\"",
        "LLM_PROVIDER|claude|LLM_PROVIDER must be one of auto, gemini, openai, offline, got \"claude\"",
        "LLM_PROVIDER|openai|OPENAI_BASE_URL is required when LLM_PROVIDER=openai",
        "GEMINI_BASE_URL|ftp://x|GEMINI_BASE_URL must be an http:// or https:// URL, got \"ftp://x\"",
        "GEMINI_MODEL|two words|GEMINI_MODEL must be a model name without spaces, '?' or '#', got \"two words\"",
        "LLM_TIMEOUT_MS|1.5|LLM_TIMEOUT_MS must be an integer from 1 to 2147483647, got \"1.5\"",
        "SIMULATED_WORK_MS|-1|SIMULATED_WORK_MS must be an integer from 0 to 2147483647, got \"-1\"",
        "RESULT_RETRY_DEADLINE_MS|99999999999999999999|RESULT_RETRY_DEADLINE_MS must be an integer from 0 to 2147483647, got \"99999999999999999999\"",
        "LOG_LEVEL|WARN|LOG_LEVEL must be one of debug, info, warn, error, got \"WARN\"",
        "LOG_LEVEL|say \"hi\"|LOG_LEVEL must be one of debug, info, warn, error, got \"say \\\"hi\\\"\"",
    })
    void eachBadValueGetsTheContractMessage(String variable, String value, String expected) {
        assertEquals(List.of(expected), problems(env(variable, value)));
    }

    @Test
    void everyBadVariableIsReportedAtOnceInTheTablesOrder() {
        Map<String, String> env = env("LOG_LEVEL", "loud", "MQTT_PORT", "x", "LLM_TIMEOUT_MS", "y");
        env.remove("GRPC_TOKEN");
        assertEquals(List.of(
                "MQTT_PORT must be an integer from 1 to 65535, got \"x\"",
                "GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)",
                "LLM_TIMEOUT_MS must be an integer from 1 to 2147483647, got \"y\"",
                "LOG_LEVEL must be one of debug, info, warn, error, got \"loud\""), problems(env));
    }

    @Test
    void secretsNeverAppearInMessagesOrToString() throws ConfigException {
        Config c = load(env("GRPC_TOKEN", "s3cret-token", "MQTT_PASSWORD", "s3cret-pass",
                "GEMINI_API_KEY", "s3cret-gemini", "OPENAI_API_KEY", "s3cret-openai"));
        assertFalse(c.toString().contains("s3cret"), c.toString());
        ConfigException e = assertThrows(ConfigException.class,
                () -> load(env("GRPC_TOKEN", "s3cret-token", "MQTT_PORT", "x")));
        assertFalse(e.getMessage().contains("s3cret"));
    }

    @Test
    void defaultWorkerIdUsesTheNodeNameCleanedAndCut() throws ConfigException {
        Config c = load(env("WORKER_ID", "", "NODE_HOSTNAME", "vm 7/\u00fc" + "n".repeat(80)));
        assertEquals(("java-vm-7--" + "n".repeat(80)).substring(0, 64 - "-1a2b".length()) + "-1a2b", c.workerId());
        assertEquals(64, c.workerId().length());
        assertEquals("java-vm7-1a2b", load(env("NODE_HOSTNAME", "vm7")).workerId());
    }

    @Test
    void defaultWorkerIdHasTheTaskSlot() throws ConfigException {
        assertEquals("java-vm7-12-1a2b", load(env("NODE_HOSTNAME", "vm7", "TASK_SLOT", "12")).workerId());
        ConfigException e = assertThrows(ConfigException.class, () -> load(env("TASK_SLOT", "3 x")));
        assertEquals(List.of("TASK_SLOT must be 1 to 10 digits, got \"3 x\""), e.problems());
    }

    @Test
    void defaultWorkerIdIsAlwaysValid() {
        String id = ConfigLoader.defaultWorkerId("my host/with:odd chars" + "x".repeat(80), "beef");
        assertTrue(ConfigLoader.WORKER_ID.matcher(id).matches(), id);
        assertTrue(id.toLowerCase(Locale.ROOT).startsWith("java-my-host-with-odd-chars"), id);
        assertTrue(id.endsWith("-beef"), id);
        assertEquals(64, id.length());
        assertEquals("java-host-0000", ConfigLoader.defaultWorkerId("", "0000"));
    }
}
