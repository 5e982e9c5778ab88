package io.aiswarm.worker;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The image's HEALTHCHECK: exit 0 when HEALTH_FILE was written within max(15 s, 3 heartbeat
 * intervals), 1 otherwise. Run as {@code java -cp worker-java.jar io.aiswarm.worker.Healthcheck}
 * or {@code java -jar worker-java.jar --healthcheck}.
 */
public final class Healthcheck {
    static final long MIN_MAX_AGE_MS = 15_000;

    private Healthcheck() {
    }

    public static void main(String[] args) {
        System.exit(run(System.getenv()));
    }

    static int run(java.util.Map<String, String> env) {
        Path file = Path.of(orDefault(env.get("HEALTH_FILE"), "/tmp/worker.health"));
        long maxAge = maxAgeMs(env.get("HEARTBEAT_INTERVAL_MS"));
        try {
            long age = new HealthFile(file).ageMs(System.currentTimeMillis());
            if (age <= maxAge) {
                return 0;
            }
            System.err.println("unhealthy: " + file + " is " + age + " ms old (limit " + maxAge + " ms)");
        } catch (IOException e) {
            System.err.println("unhealthy: cannot read " + file + " (" + e.getClass().getSimpleName() + ")");
        }
        return 1;
    }

    /** Three heartbeats may be missed, with a floor of 15 s so a slow start is not killed. */
    static long maxAgeMs(String heartbeatIntervalMs) {
        long interval = 2_000;
        try {
            if (heartbeatIntervalMs != null && !heartbeatIntervalMs.isBlank()) {
                interval = Math.max(1, Long.parseLong(heartbeatIntervalMs.trim()));
            }
        } catch (NumberFormatException e) {
            // the worker itself refuses a bad value; here keep the default
        }
        return Math.max(MIN_MAX_AGE_MS, 3 * interval);
    }

    private static String orDefault(String value, String fallback) {
        return value == null || value.isBlank() ? fallback : value;
    }
}
