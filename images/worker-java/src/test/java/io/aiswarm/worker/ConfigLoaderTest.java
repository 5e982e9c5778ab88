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
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ConfigLoaderTest {
    private static final Map<String, String> FILES = Map.of(
            "/run/secrets/token", "file-token\n",
            "/run/secrets/gemini", "  file-gemini-key  \n",
            "/run/secrets/empty", "\n");

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

    @Test
    void defaultsFollowTheProtocolTable() throws ConfigException {
        Config c = load(env());
        assertEquals("java-vm2-1a2b", c.workerId());
        assertEquals("vm2", c.nodeHostname());
        assertEquals("mosquitto", c.mqttHost());
        assertEquals(1883, c.mqttPort());
        assertNull(c.mqttUsername());
        assertNull(c.mqttPassword());
        assertFalse(c.mqttTls());
        assertEquals("ai-system", c.topicPrefix());
        assertEquals("master:50051", c.masterGrpcAddr());
        assertEquals(ProviderMode.AUTO, c.llmProvider());
        assertEquals("https://generativelanguage.googleapis.com", c.geminiBaseUrl());
        assertEquals("gemini-2.5-flash", c.geminiModel());
        assertNull(c.openaiBaseUrl());
        assertEquals("llama3.2", c.openaiModel());
        assertEquals(30_000, c.llmTimeoutMs());
        assertEquals(10_000, c.simulatedWorkMs());
        assertEquals(2_000, c.heartbeatIntervalMs());
        assertEquals(120_000, c.resultRetryDeadlineMs());
        assertEquals(20_000, c.shutdownGraceMs());
        assertEquals(Path.of("/tmp/worker.health"), c.healthFile());
        assertEquals(LogLevel.INFO, c.logLevel());
    }

    @Test
    void everyVariableIsRead() throws ConfigException {
        Config c = load(env("WORKER_ID", "w.1_A-b", "NODE_HOSTNAME", "vm7", "MQTT_HOST", "broker",
                "MQTT_PORT", "8883", "MQTT_USERNAME", "u", "MQTT_PASSWORD", "p", "MQTT_TLS", "true",
                "MQTT_CA_FILE", "/ca.pem", "MQTT_TOPIC_PREFIX", "lab/x", "MASTER_GRPC_ADDR", "127.0.0.1:9",
                "LLM_PROVIDER", "OpenAI", "GEMINI_API_KEY", "g", "GEMINI_BASE_URL", "http://127.0.0.1:1/",
                "GEMINI_MODEL", "m1", "OPENAI_BASE_URL", "http://127.0.0.1:2/v1/", "OPENAI_API_KEY", "o",
                "OPENAI_MODEL", "m2", "LLM_TIMEOUT_MS", "5", "SIMULATED_WORK_MS", "0",
                "HEARTBEAT_INTERVAL_MS", "100", "RESULT_RETRY_DEADLINE_MS", "0", "SHUTDOWN_GRACE_MS", "7",
                "HEALTH_FILE", "/tmp/h", "LOG_LEVEL", "warn"));
        assertEquals("w.1_A-b", c.workerId());
        assertEquals("vm7", c.nodeHostname());
        assertEquals("broker", c.mqttHost());
        assertEquals(8883, c.mqttPort());
        assertEquals("u", c.mqttUsername());
        assertEquals("p", c.mqttPassword());
        assertTrue(c.mqttTls());
        assertEquals(Path.of("/ca.pem"), c.mqttCaFile());
        assertEquals("lab/x", c.topicPrefix());
        assertEquals("127.0.0.1:9", c.masterGrpcAddr());
        assertEquals(ProviderMode.OPENAI, c.llmProvider());
        assertEquals("g", c.geminiApiKey());
        assertEquals("http://127.0.0.1:1", c.geminiBaseUrl(), "trailing slash dropped");
        assertEquals("m1", c.geminiModel());
        assertEquals("http://127.0.0.1:2/v1", c.openaiBaseUrl());
        assertEquals("o", c.openaiApiKey());
        assertEquals("m2", c.openaiModel());
        assertEquals(5, c.llmTimeoutMs());
        assertEquals(0, c.simulatedWorkMs());
        assertEquals(100, c.heartbeatIntervalMs());
        assertEquals(0, c.resultRetryDeadlineMs());
        assertEquals(7, c.shutdownGraceMs());
        assertEquals(Path.of("/tmp/h"), c.healthFile());
        assertEquals(LogLevel.WARN, c.logLevel());
    }

    @ParameterizedTest(name = "LOG_LEVEL={0}")
    @CsvSource({"debug,DEBUG", "info,INFO", "warn,WARN", "error,ERROR", "'',INFO"})
    void logLevelTakesEachOfTheFourLevels(String value, LogLevel expected) throws ConfigException {
        assertEquals(expected, load(env("LOG_LEVEL", value)).logLevel());
    }

    @Test
    void badLogLevelNamesTheVariableAndTheAllowedValues() {
        ConfigException e = assertThrows(ConfigException.class, () -> load(env("LOG_LEVEL", "verbose")));
        assertEquals("LOG_LEVEL", e.variable());
        assertEquals("LOG_LEVEL must be debug, info, warn or error, got \"verbose\"", e.getMessage());
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

    @Test
    void missingTokenIsRefused() {
        Map<String, String> env = env();
        env.remove("GRPC_TOKEN");
        ConfigException e = assertThrows(ConfigException.class, () -> load(env));
        assertEquals("GRPC_TOKEN", e.variable());
    }

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|', value = {
        "WORKER_ID|bad id!",
        "WORKER_ID|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "MQTT_PORT|abc",
        "MQTT_PORT|0",
        "MQTT_PORT|70000",
        "MQTT_TLS|maybe",
        "MQTT_TOPIC_PREFIX|a/#",
        "MASTER_GRPC_ADDR|master",
        "MASTER_GRPC_ADDR|master:port",
        "LLM_PROVIDER|claude",
        "GEMINI_BASE_URL|ftp://x",
        "OPENAI_BASE_URL|not a url",
        "GEMINI_MODEL|two words",
        "LLM_TIMEOUT_MS|0",
        "LLM_TIMEOUT_MS|1.5",
        "SIMULATED_WORK_MS|-1",
        "HEARTBEAT_INTERVAL_MS|fast",
        "RESULT_RETRY_DEADLINE_MS|x",
        "SHUTDOWN_GRACE_MS|-5",
        "GRPC_TOKEN_FILE|/run/secrets/missing",
        "GRPC_TOKEN_FILE|/run/secrets/empty",
        "LOG_LEVEL|warning",
        "LOG_LEVEL|WARN",
        "LOG_LEVEL|trace",
    })
    void badValueNamesItsVariable(String variable, String value) {
        ConfigException e = assertThrows(ConfigException.class, () -> load(env(variable, value)));
        assertEquals(variable, e.variable());
        assertTrue(e.getMessage().startsWith(variable + " "), e.getMessage());
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
    void defaultWorkerIdIsAlwaysValid() {
        String id = ConfigLoader.defaultWorkerId("my host/with:odd chars" + "x".repeat(80), "beef");
        assertTrue(ConfigLoader.WORKER_ID.matcher(id).matches(), id);
        assertTrue(id.startsWith("java-my-host-with-odd-chars"), id);
        assertTrue(id.endsWith("-beef"), id);
        assertEquals(64, id.length());
        assertEquals("java-host-0000", ConfigLoader.defaultWorkerId("", "0000"));
    }
}
