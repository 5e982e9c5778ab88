package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/** The payloads this worker publishes are the documented ones, and valid by the shared schema. */
class PayloadsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Payloads payloads = new Payloads("java-vm2-1a2b", "vm2");

    private static void assertPayload(String messageType, String expected, String actual) throws Exception {
        assertEquals(JSON.readTree(expected), JSON.readTree(actual));
        JsonNode valid = PayloadSchema.bundled().validate(messageType, actual.getBytes(StandardCharsets.UTF_8));
        assertEquals(JSON.readTree(expected), valid);
    }

    @Test
    void registerAndHeartbeatCarryTheWholeIdentity() throws Exception {
        assertPayload("register", "{\"v\":1,\"type\":\"register\",\"worker_id\":\"java-vm2-1a2b\",\"language\":\"java\","
                + "\"node\":\"vm2\",\"provider\":\"offline\",\"ts\":1764355200000}", payloads.register(Provider.OFFLINE, 1764355200000L));
        assertPayload("heartbeat", "{\"v\":1,\"type\":\"heartbeat\",\"worker_id\":\"java-vm2-1a2b\",\"language\":\"java\","
                + "\"node\":\"vm2\",\"status\":\"busy\",\"task_id\":\"q_1\",\"held_task_ids\":[\"q_1\",\"q_2\"],\"ts\":5}",
                payloads.heartbeat(WorkerStatus.BUSY, "q_1", List.of("q_1", "q_2"), 5));
        assertPayload("heartbeat", "{\"v\":1,\"type\":\"heartbeat\",\"worker_id\":\"java-vm2-1a2b\",\"language\":\"java\","
                + "\"node\":\"vm2\",\"status\":\"idle\",\"task_id\":null,\"held_task_ids\":[],\"ts\":6}",
                payloads.heartbeat(WorkerStatus.IDLE, null, List.of(), 6));
    }

    @Test
    void statusRejectionAndLastWill() throws Exception {
        assertPayload("status", "{\"v\":1,\"type\":\"status\",\"worker_id\":\"java-vm2-1a2b\",\"status\":\"idle\","
                + "\"task_id\":null,\"ts\":7}", payloads.status(WorkerStatus.IDLE, null, 7));
        assertPayload("rejection", "{\"v\":1,\"type\":\"status\",\"worker_id\":\"java-vm2-1a2b\",\"status\":\"busy\","
                + "\"task_id\":\"a\",\"rejected_task_id\":\"b\",\"ts\":8}", payloads.statusRejecting(WorkerStatus.BUSY, "a", "b", 8));
        assertPayload("lastWill", "{\"v\":1,\"type\":\"status\",\"worker_id\":\"java-vm2-1a2b\",\"status\":\"offline\","
                + "\"task_id\":null,\"ts\":9}", payloads.offline(9));
    }

    @Test
    void logHasOptionalTaskId() throws Exception {
        assertPayload("log", "{\"v\":1,\"type\":\"log\",\"source\":\"java-vm2-1a2b\",\"level\":\"info\","
                + "\"message\":\"m\",\"task_id\":\"q\",\"ts\":1}", payloads.log(LogLevel.INFO, "m", "q", 1));
        assertPayload("log", "{\"v\":1,\"type\":\"log\",\"source\":\"java-vm2-1a2b\",\"level\":\"error\","
                + "\"message\":\"m\",\"ts\":1}", payloads.log(LogLevel.ERROR, "m", null, 1));
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
