package io.aiswarm.worker;

/** A validated task payload (docs/protocol.md). */
public record TaskMessage(String taskId, String query, long leaseMs, boolean hasCredential, long ts) {

    /** The query is the user's text: keep it out of logs. */
    @Override
    public String toString() {
        return "TaskMessage[task_id=" + taskId + ", query_chars=" + query.length()
                + ", lease_ms=" + leaseMs + ", has_credential=" + hasCredential + ", ts=" + ts + "]";
    }
}
