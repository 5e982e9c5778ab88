package io.aiswarm.worker;

import io.aiswarm.v1.ResultAck;
import io.grpc.Status;

/** How a SendResult with retries ended: an ack from the master, or the last gRPC status. */
public record SendOutcome(ResultAck ack, Status.Code failure, String failureDetail, int attempts) {

    static SendOutcome acknowledged(ResultAck ack, int attempts) {
        return new SendOutcome(ack, null, null, attempts);
    }

    static SendOutcome failed(Status status, int attempts) {
        return new SendOutcome(null, status.getCode(), status.getDescription(), attempts);
    }

    public boolean delivered() {
        return ack != null;
    }

    /** The master took this result as the task's own: it freed the worker (docs/protocol.md rule 2). */
    public boolean accepted() {
        return ack != null && ack.getAccepted() && !ack.getDuplicate();
    }
}
