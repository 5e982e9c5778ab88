package io.aiswarm.worker;

import java.io.PrintStream;
import java.time.Instant;

/**
 * One line per event on stdout: time, level, worker id, message. Callers never pass secrets;
 * task queries are not logged either (they are the user's text).
 */
public final class Log {
    private final String workerId;
    private final PrintStream out;

    public Log(String workerId) {
        this(workerId, System.out);
    }

    Log(String workerId, PrintStream out) {
        this.workerId = workerId;
        this.out = out;
    }

    public void info(String message) {
        write("INFO", message);
    }

    public void warn(String message) {
        write("WARN", message);
    }

    public void error(String message) {
        write("ERROR", message);
    }

    private void write(String level, String message) {
        // One println per event so lines from different threads never interleave.
        out.println(Instant.now() + " " + level + " [" + workerId + "] " + message.replace('\n', ' '));
        out.flush();
    }
}
