package io.aiswarm.worker;

import java.util.Locale;

/**
 * The levels of log lines and of {@code log} payloads, lowest first. LOG_LEVEL names the lowest
 * one printed on stdout and published on P/logs (docs/protocol.md "Logging").
 */
public enum LogLevel {
    DEBUG, INFO, WARN, ERROR;

    /**
     * Parses "debug", "info", "warn" or "error", exactly as written (like the master's and the
     * other workers' LOG_LEVEL); null for anything else.
     */
    static LogLevel parse(String text) {
        for (LogLevel level : values()) {
            if (level.wireName().equals(text)) {
                return level;
            }
        }
        return null;
    }

    /** Whether a line at this level passes a LOG_LEVEL of {@code minimum}. */
    boolean atLeast(LogLevel minimum) {
        return compareTo(minimum) >= 0;
    }

    /** "info", as on the wire and in the LOG_LEVEL variable. */
    String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
