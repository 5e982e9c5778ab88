package io.aiswarm.worker;

import tools.jackson.databind.JsonNode;

/** Reads a payload received on the task topic, once the schema has checked it. */
public final class TaskParser {
    private TaskParser() {
    }

    public static TaskMessage parse(byte[] payload) throws InvalidPayloadException {
        JsonNode task = PayloadSchema.bundled().validate("task", payload);
        // JSON has one number type (3e4 is 30000); the schema has checked these are integers.
        return new TaskMessage(task.get("task_id").stringValue(), task.get("query").stringValue(),
                task.get("lease_ms").asLong(), task.get("has_credential").booleanValue(), task.get("ts").asLong());
    }
}
