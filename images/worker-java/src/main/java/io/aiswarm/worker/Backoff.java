package io.aiswarm.worker;

import io.grpc.Status;
import java.util.Set;

/** docs/protocol.md delivery rule 5: which SendResult failures are retried, and how long to wait. Pure. */
public final class Backoff {
    static final long FIRST_DELAY_MS = 200;
    static final long MAX_DELAY_MS = 5_000;
    private static final Set<Status.Code> RETRYABLE =
            Set.of(Status.Code.UNAVAILABLE, Status.Code.DEADLINE_EXCEEDED, Status.Code.RESOURCE_EXHAUSTED);

    private Backoff() {
    }

    /** The wait after failed attempt number {@code attempt} (1-based): 200 ms doubling, at most 5 s. */
    public static long delayMs(int attempt) {
        if (attempt < 1) {
            throw new IllegalArgumentException("attempt must be at least 1, got " + attempt);
        }
        int doublings = Math.min(attempt - 1, 10); // 200 * 2^5 already exceeds the cap
        return Math.min(FIRST_DELAY_MS << doublings, MAX_DELAY_MS);
    }

    public static boolean isRetryable(Status.Code code) {
        return RETRYABLE.contains(code);
    }
}
