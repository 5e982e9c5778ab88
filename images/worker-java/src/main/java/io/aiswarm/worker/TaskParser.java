package io.aiswarm.worker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;

/** Validates a payload received on the task topic. Pure. */
public final class TaskParser {
    static final int MAX_PAYLOAD_BYTES = 64 * 1024;
    static final int MAX_QUERY_CHARS = 16_000;
    private static final ObjectMapper JSON =
            new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private TaskParser() {
    }

    public static TaskMessage parse(byte[] payload) throws InvalidPayloadException {
        if (payload.length > MAX_PAYLOAD_BYTES) {
            throw new InvalidPayloadException("payload is " + payload.length + " bytes, more than 64 KiB");
        }
        JsonNode root = readJson(payload);
        if (!root.isObject()) {
            throw new InvalidPayloadException("payload is not a JSON object");
        }
        JsonNode v = root.get("v");
        if (v == null || !v.isIntegralNumber() || v.asLong() != 1) {
            throw new InvalidPayloadException("field v must be 1");
        }
        String type = requireString(root, "type");
        if (!type.equals("task")) {
            throw new InvalidPayloadException("type must be \"task\" on a task topic");
        }
        String taskId = requireString(root, "task_id");
        if (taskId.isEmpty()) {
            throw new InvalidPayloadException("field task_id must not be empty");
        }
        String query = requireString(root, "query");
        int queryChars = query.codePointCount(0, query.length());
        if (queryChars < 1 || queryChars > MAX_QUERY_CHARS) {
            throw new InvalidPayloadException("field query must be 1 to 16000 characters, got " + queryChars);
        }
        long leaseMs = requireNonNegativeInteger(root, "lease_ms");
        JsonNode hasCredential = root.get("has_credential");
        if (hasCredential == null || !hasCredential.isBoolean()) {
            throw new InvalidPayloadException("field has_credential must be a boolean");
        }
        long ts = requireNonNegativeInteger(root, "ts");
        return new TaskMessage(taskId, query, leaseMs, hasCredential.booleanValue(), ts);
    }

    private static JsonNode readJson(byte[] payload) throws InvalidPayloadException {
        try {
            JsonNode root = JSON.readTree(payload);
            if (root == null || root.isMissingNode()) {
                throw new InvalidPayloadException("payload is empty");
            }
            return root;
        } catch (JsonProcessingException e) {
            throw new InvalidPayloadException("payload is not valid JSON");
        } catch (IOException e) {
            throw new InvalidPayloadException("payload could not be read");
        }
    }

    private static String requireString(JsonNode root, String field) throws InvalidPayloadException {
        JsonNode node = root.get(field);
        if (node == null || !node.isTextual()) {
            throw new InvalidPayloadException("field " + field + " must be a string");
        }
        return node.textValue();
    }

    private static long requireNonNegativeInteger(JsonNode root, String field) throws InvalidPayloadException {
        JsonNode node = root.get(field);
        if (node == null || !node.isIntegralNumber() || !node.canConvertToLong() || node.asLong() < 0) {
            throw new InvalidPayloadException("field " + field + " must be a non-negative integer");
        }
        return node.asLong();
    }
}
