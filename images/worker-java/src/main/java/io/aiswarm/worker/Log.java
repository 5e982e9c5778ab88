package io.aiswarm.worker;

import java.io.PrintStream;
import java.time.Instant;

/**
 * One line per event on stdout: time, level, worker id, message; lines below LOG_LEVEL are
 * dropped. Callers never pass secrets; task queries are not logged either (they are the user's text).
 */
public final class Log {
    private final String workerId;
    private final LogLevel minimum;
    private final PrintStream out;

    public Log(String workerId, LogLevel minimum) {
        this(workerId, minimum, System.out);
    }

    Log(String workerId, LogLevel minimum, PrintStream out) {
        this.workerId = workerId;
        this.minimum = minimum;
        this.out = out;
    }

    /** Whether a line at {@code level} is printed; events below it are not published either. */
    public boolean enabled(LogLevel level) {
        return level.atLeast(minimum);
    }

    public void debug(String message) {
        write(LogLevel.DEBUG, message);
    }

    public void info(String message) {
        write(LogLevel.INFO, message);
    }

    public void warn(String message) {
        write(LogLevel.WARN, message);
    }

    public void error(String message) {
        write(LogLevel.ERROR, message);
    }

    public void write(LogLevel level, String message) {
        if (!enabled(level)) {
            return;
        }
        // One println per event so lines from different threads never interleave.
        out.println(Instant.now() + " " + level.name() + " [" + workerId + "] " + message.replace('\n', ' '));
        out.flush();
    }
}
