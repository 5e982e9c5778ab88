package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class BackoffTest {
    @Test
    void delaysDoubleFrom200MsAndStopAt5s() {
        List<Long> delays = IntStream.rangeClosed(1, 9).mapToObj(Backoff::delayMs).toList();
        assertEquals(List.of(200L, 400L, 800L, 1600L, 3200L, 5000L, 5000L, 5000L, 5000L), delays);
        assertEquals(5000L, Backoff.delayMs(1_000_000));
        assertThrows(IllegalArgumentException.class, () -> Backoff.delayMs(0));
    }

    @Test
    void onlyTransientCodesAreRetried() {
        assertTrue(Backoff.isRetryable(Status.Code.UNAVAILABLE));
        assertTrue(Backoff.isRetryable(Status.Code.DEADLINE_EXCEEDED));
        assertTrue(Backoff.isRetryable(Status.Code.RESOURCE_EXHAUSTED));
        for (Status.Code code : List.of(Status.Code.UNAUTHENTICATED, Status.Code.PERMISSION_DENIED,
                Status.Code.NOT_FOUND, Status.Code.INVALID_ARGUMENT, Status.Code.INTERNAL, Status.Code.UNKNOWN)) {
            assertFalse(Backoff.isRetryable(code), code.name());
        }
    }
}
