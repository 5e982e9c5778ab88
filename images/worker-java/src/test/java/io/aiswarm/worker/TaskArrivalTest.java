package io.aiswarm.worker;

import static io.aiswarm.worker.TaskArrival.IGNORE_DUPLICATE;
import static io.aiswarm.worker.TaskArrival.REJECT;
import static io.aiswarm.worker.TaskArrival.RUN_NEXT;
import static io.aiswarm.worker.TaskArrival.RUN_NOW;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class TaskArrivalTest {
    @Test
    void anIdleWorkerRunsTheTaskNow() {
        assertEquals(RUN_NOW, TaskArrival.decide(null, false, null, false, "b"));
    }

    @Test
    void aTaskArrivingWhileTheResultIsBeingSentRunsNext() {
        assertEquals(RUN_NEXT, TaskArrival.decide("a", true, null, false, "b"));
    }

    @Test
    void aTaskArrivingWhileTheTaskInHandIsStillWorkedOnIsRejected() {
        assertEquals(REJECT, TaskArrival.decide("a", false, null, false, "b"));
    }

    @Test
    void onlyOneTaskMayWait() {
        assertEquals(REJECT, TaskArrival.decide("a", true, "b", false, "c"));
    }

    @Test
    void aStoppingWorkerRejectsEvenWhenIdleOrSending() {
        assertEquals(REJECT, TaskArrival.decide(null, false, null, true, "b"));
        assertEquals(REJECT, TaskArrival.decide("a", true, null, true, "b"));
    }

    @Test
    void theTaskInHandOrTheWaitingOneDeliveredAgainIsIgnored() {
        assertEquals(IGNORE_DUPLICATE, TaskArrival.decide("a", false, null, false, "a"));
        assertEquals(IGNORE_DUPLICATE, TaskArrival.decide("a", true, "b", false, "b"));
        assertEquals(IGNORE_DUPLICATE, TaskArrival.decide("a", true, "b", true, "a"));
    }
}
