package io.aiswarm.worker;

import java.util.List;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * Builds the JSON payloads a worker publishes (docs/protocol.md "Payloads"). Pure: the caller
 * passes the timestamp, so tests can check exact output.
 */
public final class Payloads {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String workerId;
    private final String node;

    public Payloads(String workerId, String node) {
        this.workerId = workerId;
        this.node = node;
    }

    public String register(Provider provider, long ts) {
        ObjectNode o = base("register");
        o.put("worker_id", workerId);
        o.put("language", Config.LANGUAGE);
        o.put("node", node);
        o.put("provider", provider.wireName());
        o.put("ts", ts);
        return o.toString();
    }

    /**
     * Carries the whole identity so a restarted master can rebuild its worker list from heartbeats, and
     * every task held (the one in hand, then the one waiting to run next) so the master renews each lease.
     */
    public String heartbeat(WorkerStatus status, String taskId, List<String> heldTaskIds, long ts) {
        ObjectNode o = base("heartbeat");
        o.put("worker_id", workerId);
        o.put("language", Config.LANGUAGE);
        o.put("node", node);
        o.put("status", status.wireName());
        o.put("task_id", taskId);
        heldTaskIds.forEach(o.putArray("held_task_ids")::add);
        o.put("ts", ts);
        return o.toString();
    }

    public String status(WorkerStatus status, String taskId, long ts) {
        return statusNode(status, taskId, ts).toString();
    }

    /** A status that also names a task refused because the worker was busy or stopping. */
    public String statusRejecting(WorkerStatus status, String taskId, String rejectedTaskId, long ts) {
        ObjectNode o = statusNode(status, taskId, ts);
        o.put("rejected_task_id", rejectedTaskId);
        return o.toString();
    }

    /** Also the last will, set at connect time. */
    public String offline(long ts) {
        return status(WorkerStatus.OFFLINE, null, ts);
    }

    public String log(LogLevel level, String message, String taskId, long ts) {
        ObjectNode o = base("log");
        o.put("source", workerId);
        o.put("level", level.wireName());
        o.put("message", message);
        if (taskId != null) {
            o.put("task_id", taskId);
        }
        o.put("ts", ts);
        return o.toString();
    }

    private ObjectNode statusNode(WorkerStatus status, String taskId, long ts) {
        ObjectNode o = base("status");
        o.put("worker_id", workerId);
        o.put("status", status.wireName());
        o.put("task_id", taskId);
        o.put("ts", ts);
        return o;
    }

    private static ObjectNode base(String type) {
        ObjectNode o = JSON.createObjectNode();
        o.put("v", 1);
        o.put("type", type);
        return o;
    }
}
