package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class LogTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    private Log logAt(LogLevel minimum) {
        return new Log("w1", minimum, new PrintStream(out, true, StandardCharsets.UTF_8));
    }

    private List<String> lines() {
        String text = out.toString(StandardCharsets.UTF_8);
        return text.isEmpty() ? List.of() : List.of(text.split("\n"));
    }

    private static void writeOneOfEach(Log log) {
        log.debug("d");
        log.info("i");
        log.warn("w");
        log.error("e");
    }

    @Test
    void warnDropsDebugAndInfo() {
        Log log = logAt(LogLevel.WARN);
        writeOneOfEach(log);
        List<String> lines = lines();
        assertEquals(2, lines.size(), lines.toString());
        assertTrue(lines.get(0).endsWith(" WARN [w1] w"), lines.get(0));
        assertTrue(lines.get(1).endsWith(" ERROR [w1] e"), lines.get(1));
        assertFalse(log.enabled(LogLevel.INFO));
        assertTrue(log.enabled(LogLevel.WARN));
    }

    @Test
    void debugPrintsEverythingAndErrorOnlyErrors() {
        writeOneOfEach(logAt(LogLevel.DEBUG));
        assertEquals(4, lines().size(), lines().toString());
        out.reset();
        writeOneOfEach(logAt(LogLevel.ERROR));
        assertEquals(1, lines().size(), lines().toString());
        assertTrue(lines().get(0).endsWith(" ERROR [w1] e"));
    }

    @Test
    void aMessageStaysOnOneLine() {
        logAt(LogLevel.INFO).info("two\nlines");
        assertEquals(1, lines().size());
        assertTrue(lines().get(0).endsWith(" INFO [w1] two lines"), lines().get(0));
    }
}
