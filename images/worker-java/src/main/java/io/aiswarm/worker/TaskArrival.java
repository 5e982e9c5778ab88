package io.aiswarm.worker;

/**
 * What the worker does with a task that reaches it (docs/protocol.md rule 2). Pure logic, so
 * the rule can be read and tested without MQTT.
 *
 * <p>An accepted result frees the worker on the master's side before the worker has read
 * SendResult's answer, so the master may lease the next task while the worker is still
 * sending: that one task is kept and run next. At any other busy moment, or while stopping,
 * the task is refused so the master re-queues it.
 */
enum TaskArrival {
    /** Idle: run it now. */
    RUN_NOW,
    /** The result of the task in hand is being sent: run it right after. */
    RUN_NEXT,
    /** The task in hand or the one waiting, delivered again (QoS 1): nothing to do. */
    IGNORE_DUPLICATE,
    /** Busy, or stopping: answer with a status carrying rejected_task_id. */
    REJECT;

    /**
     * @param inHand    id of the task in hand, or null when idle
     * @param sending   whether the result of the task in hand is being sent (SendResult, retries included)
     * @param waiting   id of the task waiting to run next, or null
     * @param stopping  whether SIGTERM has arrived
     * @param arriving  id of the task that just arrived
     */
    static TaskArrival decide(String inHand, boolean sending, String waiting, boolean stopping, String arriving) {
        if (arriving.equals(inHand) || arriving.equals(waiting)) {
            return IGNORE_DUPLICATE;
        }
        if (stopping) {
            return REJECT;
        }
        if (inHand == null) {
            return RUN_NOW;
        }
        return sending && waiting == null ? RUN_NEXT : REJECT;
    }
}
