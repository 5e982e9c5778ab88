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
        java.util.Map<String, Object> settings = ConfigLoader.healthSettings(env);
        Path file = Path.of((String) settings.get("HEALTH_FILE"));
        long maxAge = maxAgeMs((Long) settings.get("HEARTBEAT_INTERVAL_MS"));
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
    static long maxAgeMs(long heartbeatIntervalMs) {
        return Math.max(MIN_MAX_AGE_MS, 3 * heartbeatIntervalMs);
    }
}
