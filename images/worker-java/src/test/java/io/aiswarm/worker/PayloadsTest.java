package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class PayloadsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Payloads payloads = new Payloads("java-vm2-1a2b", "vm2");

    private static JsonNode read(String json) throws Exception {
        return JSON.readTree(json);
    }

    @Test
    void registerCarriesIdentityAndProvider() throws Exception {
        JsonNode n = read(payloads.register(Provider.OFFLINE, 1764355200000L));
        assertEquals(read("{\"v\":1,\"type\":\"register\",\"worker_id\":\"java-vm2-1a2b\",\"language\":\"java\","
                + "\"node\":\"vm2\",\"provider\":\"offline\",\"ts\":1764355200000}"), n);
    }

    @Test
    void heartbeatCarriesTheWholeIdentityAndTask() throws Exception {
        assertEquals(read("{\"v\":1,\"type\":\"heartbeat\",\"worker_id\":\"java-vm2-1a2b\",\"language\":\"java\","
                        + "\"node\":\"vm2\",\"status\":\"busy\",\"task_id\":\"q_1\",\"ts\":5}"),
                read(payloads.heartbeat(WorkerStatus.BUSY, "q_1", 5)));
        JsonNode idle = read(payloads.heartbeat(WorkerStatus.IDLE, null, 6));
        assertTrue(idle.get("task_id").isNull(), "task_id is JSON null when idle");
    }

    @Test
    void statusAndRejection() throws Exception {
        assertEquals(read("{\"v\":1,\"type\":\"status\",\"worker_id\":\"java-vm2-1a2b\",\"status\":\"idle\","
                + "\"task_id\":null,\"ts\":7}"), read(payloads.status(WorkerStatus.IDLE, null, 7)));
        assertEquals(read("{\"v\":1,\"type\":\"status\",\"worker_id\":\"java-vm2-1a2b\",\"status\":\"busy\","
                        + "\"task_id\":\"a\",\"rejected_task_id\":\"b\",\"ts\":8}"),
                read(payloads.statusRejecting(WorkerStatus.BUSY, "a", "b", 8)));
    }

    @Test
    void offlineIsTheLastWillShape() throws Exception {
        assertEquals(read("{\"v\":1,\"type\":\"status\",\"worker_id\":\"java-vm2-1a2b\",\"status\":\"offline\","
                + "\"task_id\":null,\"ts\":9}"), read(payloads.offline(9)));
    }

    @Test
    void logHasOptionalTaskId() throws Exception {
        assertEquals(read("{\"v\":1,\"type\":\"log\",\"source\":\"java-vm2-1a2b\",\"level\":\"info\","
                + "\"message\":\"m\",\"task_id\":\"q\",\"ts\":1}"), read(payloads.log(LogLevel.INFO, "m", "q", 1)));
        assertFalse(read(payloads.log(LogLevel.ERROR, "m", null, 1)).has("task_id"));
    }

    @Test
    void topicsFollowThePrefix() {
        Topics t = new Topics("ai-system", "w1");
        assertEquals("ai-system/workers/w1/register", t.register());
        assertEquals("ai-system/workers/w1/heartbeat", t.heartbeat());
        assertEquals("ai-system/workers/w1/status", t.status());
        assertEquals("ai-system/workers/w1/tasks", t.tasks());
        assertEquals("ai-system/logs", t.logs());
    }
}
