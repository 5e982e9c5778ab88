package io.aiswarm.worker;

/** A received payload that breaks the contract; the message says why, never what it contained. */
public final class InvalidPayloadException extends Exception {
    public InvalidPayloadException(String reason) {
        super(reason);
    }
}
