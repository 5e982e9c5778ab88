package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HealthcheckTest {
    @TempDir
    Path dir;

    @Test
    void maxAgeIsThreeHeartbeatsWithA15sFloor() {
        assertEquals(15_000, Healthcheck.maxAgeMs(2000));
        assertEquals(30_000, Healthcheck.maxAgeMs(10000));
    }

    @Test
    void aMissingOrBadIntervalCountsAsTheTablesDefault() {
        long tableDefault = WorkerSettings.ALL.stream().filter(s -> s.name().equals("HEARTBEAT_INTERVAL_MS"))
                .map(s -> Long.parseLong(s.defaultValue())).findFirst().orElseThrow();
        assertEquals(tableDefault, ConfigLoader.healthSettings(Map.of()).get("HEARTBEAT_INTERVAL_MS"));
        assertEquals(tableDefault, ConfigLoader.healthSettings(Map.of("HEARTBEAT_INTERVAL_MS", "garbage")).get("HEARTBEAT_INTERVAL_MS"));
        assertEquals(500L, ConfigLoader.healthSettings(Map.of("HEARTBEAT_INTERVAL_MS", "500", "GRPC_TOKEN_FILE", "/nope"))
                .get("HEARTBEAT_INTERVAL_MS"));
    }

    @Test
    void freshFileIsHealthyStaleOrMissingIsNot() throws Exception {
        Path file = dir.resolve("worker.health");
        Map<String, String> env = Map.of("HEALTH_FILE", file.toString());
        assertEquals(1, Healthcheck.run(env), "missing file");

        new HealthFile(file).write(System.currentTimeMillis());
        assertEquals(0, Healthcheck.run(env), "just written");

        new HealthFile(file).write(System.currentTimeMillis() - 16_000);
        assertEquals(1, Healthcheck.run(env), "older than 15 s");
        assertEquals(0, Healthcheck.run(Map.of("HEALTH_FILE", file.toString(), "HEARTBEAT_INTERVAL_MS", "10000")),
                "within 3 x 10 s");
    }

    @Test
    void unreadableContentFallsBackToModificationTime() throws Exception {
        Path file = dir.resolve("touched");
        Files.writeString(file, "ok");
        assertEquals(0, Healthcheck.run(Map.of("HEALTH_FILE", file.toString())));
        Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 60_000));
        assertEquals(1, Healthcheck.run(Map.of("HEALTH_FILE", file.toString())));
    }
}
