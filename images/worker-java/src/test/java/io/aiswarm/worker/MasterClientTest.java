package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.aiswarm.v1.TaskResult;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** MasterClient against a real gRPC server on loopback; the retry clock is simulated. */
class MasterClientTest {
    private static final TaskResult RESULT = TaskResult.newBuilder()
            .setTaskId("q1").setWorkerId("w1").setLanguage("java").setNode("vm").setProvider("offline")
            .setAnswer("a").build();

    private FakeMaster master;
    private final AtomicLong now = new AtomicLong(1_000_000);
    private final List<Long> sleeps = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        master = new FakeMaster("right-token");
    }

    @AfterEach
    void stop() throws Exception {
        master.close();
    }

    /** A client whose sleeps advance a fake clock, so retry schedules run instantly. */
    private MasterClient client(String token) {
        return new MasterClient(master.address(), token, now::get, ms -> {
            sleeps.add(ms);
            now.addAndGet(ms);
        });
    }

    @Test
    void resultIsDeliveredWithTheBearerToken() throws Exception {
        try (MasterClient client = client("right-token")) {
            SendOutcome outcome = client.sendResult(RESULT, 120_000);
            assertTrue(outcome.delivered());
            assertTrue(outcome.ack().getAccepted());
            assertEquals(1, outcome.attempts());
            assertEquals(RESULT, master.awaitResult(1_000));
        }
    }

    @Test
    void transientFailuresAreRetriedWithBackoff() throws Exception {
        master.failNextResults(3, Status.UNAVAILABLE);
        try (MasterClient client = client("right-token")) {
            SendOutcome outcome = client.sendResult(RESULT, 120_000);
            assertTrue(outcome.delivered());
            assertEquals(4, outcome.attempts());
            assertEquals(List.of(200L, 400L, 800L), sleeps);
        }
    }

    @Test
    void resourceExhaustedAndDeadlineExceededAreRetriedToo() throws Exception {
        try (MasterClient client = client("right-token")) {
            master.failNextResults(1, Status.RESOURCE_EXHAUSTED);
            assertEquals(2, client.sendResult(RESULT, 120_000).attempts());
            master.failNextResults(1, Status.DEADLINE_EXCEEDED);
            assertEquals(2, client.sendResult(RESULT, 120_000).attempts());
        }
    }

    @Test
    void retriesStopAtTheRetryDeadline() throws Exception {
        master.failNextResults(Integer.MAX_VALUE, Status.UNAVAILABLE);
        try (MasterClient client = client("right-token")) {
            SendOutcome outcome = client.sendResult(RESULT, 10_000);
            assertFalse(outcome.delivered());
            assertEquals(Status.Code.UNAVAILABLE, outcome.failure());
            // 200+400+800+1600+3200 = 6200, then the last 3800 ms up to the deadline
            assertEquals(List.of(200L, 400L, 800L, 1600L, 3200L, 3800L), sleeps);
            assertEquals(7, outcome.attempts());
        }
    }

    @Test
    void wrongTokenIsFinalAndReportedAsUnauthenticated() throws Exception {
        try (MasterClient client = client("wrong-token")) {
            SendOutcome outcome = client.sendResult(RESULT, 120_000);
            assertFalse(outcome.delivered());
            assertEquals(Status.Code.UNAUTHENTICATED, outcome.failure());
            assertEquals(1, outcome.attempts());
            assertTrue(sleeps.isEmpty());
            assertEquals(List.of("Bearer wrong-token"), master.rejectedAuthorizations);
        }
    }

    @Test
    void otherCodesAreFinal() throws Exception {
        master.failNextResults(1, Status.PERMISSION_DENIED);
        try (MasterClient client = client("right-token")) {
            SendOutcome outcome = client.sendResult(RESULT, 120_000);
            assertEquals(Status.Code.PERMISSION_DENIED, outcome.failure());
            assertEquals(1, outcome.attempts());
        }
    }

    @Test
    void unreachableMasterIsUnavailableAndRetried() throws Exception {
        String address = master.address();
        master.close();
        try (MasterClient client = new MasterClient(address, "right-token", now::get, ms -> {
            sleeps.add(ms);
            now.addAndGet(ms);
        })) {
            SendOutcome outcome = client.sendResult(RESULT, 1_000);
            assertEquals(Status.Code.UNAVAILABLE, outcome.failure());
            assertTrue(outcome.attempts() > 1);
        }
    }

    @Test
    void credentialIsFetchedForTheTaskAndWorker() throws Exception {
        master.giveUserKey("q1", "user-key");
        try (MasterClient client = client("right-token")) {
            assertEquals(Optional.of("user-key"), client.fetchCredential("q1", "w1"));
            assertEquals(Optional.empty(), client.fetchCredential("q2", "w1"));
            assertEquals("w1", master.credentialRequests.take().getWorkerId());
        }
        try (MasterClient client = client("wrong-token")) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> client.fetchCredential("q1", "w1"));
            assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
        }
    }
}
