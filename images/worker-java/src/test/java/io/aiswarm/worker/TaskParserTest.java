package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TaskParserTest {
    private static final String VALID =
            "{\"v\":1,\"type\":\"task\",\"task_id\":\"q_01\",\"query\":\"What is Docker Swarm?\","
                    + "\"lease_ms\":30000,\"has_credential\":false,\"ts\":1764355200100}";

    private static TaskMessage parse(String json) throws InvalidPayloadException {
        return TaskParser.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void validTaskIsParsed() throws InvalidPayloadException {
        TaskMessage task = parse(VALID);
        assertEquals("q_01", task.taskId());
        assertEquals("What is Docker Swarm?", task.query());
        assertEquals(30000, task.leaseMs());
        assertFalse(task.hasCredential());
        assertEquals(1764355200100L, task.ts());
    }

    @Test
    void unknownFieldsAreIgnored() throws InvalidPayloadException {
        TaskMessage task = parse(VALID.replace("}", ",\"extra\":{\"a\":[1]},\"has_credential\":true}")
                .replace("\"has_credential\":false,", ""));
        assertTrue(task.hasCredential());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "",
        "not json",
        "[1,2]",
        "\"task\"",
        "{\"v\":1,\"type\":\"task\"} trailing",
        "{\"v\":2,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":\"1\",\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"status\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":7,\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":null,\"lease_ms\":1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":-1,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1.5,\"has_credential\":false,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":\"no\",\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"ts\":1}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":\"now\"}",
        "{\"v\":1,\"type\":\"task\",\"task_id\":\"q\",\"query\":\"x\",\"lease_ms\":1,\"has_credential\":false,\"ts\":99999999999999999999}",
    })
    void malformedTaskIsRefused(String json) {
        assertThrows(InvalidPayloadException.class, () -> parse(json));
    }

    @Test
    void queryLengthLimitsAreInCharacters() throws InvalidPayloadException {
        String max = "é".repeat(TaskParser.MAX_QUERY_CHARS);
        assertEquals(max, parse(VALID.replace("What is Docker Swarm?", max)).query());
        InvalidPayloadException e = assertThrows(InvalidPayloadException.class,
                () -> parse(VALID.replace("What is Docker Swarm?", max + "x")));
        assertTrue(e.getMessage().contains("query"), e.getMessage());
    }

    @Test
    void payloadOver64KiBIsRefusedBeforeParsing() {
        byte[] big = new byte[64 * 1024 + 1];
        InvalidPayloadException e = assertThrows(InvalidPayloadException.class, () -> TaskParser.parse(big));
        assertTrue(e.getMessage().contains("64 KiB"), e.getMessage());
    }

    @Test
    void reasonNeverQuotesTheContent() {
        String secretish = "{\"v\":1,\"type\":\"SECRET-CONTENT\",\"task_id\":\"q\"}";
        InvalidPayloadException e = assertThrows(InvalidPayloadException.class, () -> parse(secretish));
        assertFalse(e.getMessage().contains("SECRET-CONTENT"), e.getMessage());
    }
}
