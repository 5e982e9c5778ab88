package io.aiswarm.worker;

import io.aiswarm.v1.TaskResult;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The worker's state machine: idle or holding one task (plus, while its result is being sent,
 * at most one task waiting to run next), heartbeats, and the SIGTERM sequence
 * (docs/protocol.md "Worker behaviour"). MQTT and gRPC are reached through {@link MqttLink}
 * and {@link MasterClient}; the per-task work is in {@link TaskProcessor}.
 */
public final class Worker implements MqttLink.Listener {
    private static final long OFFLINE_ACK_TIMEOUT_MS = 2_000;

    private final Config config;
    private final Topics topics;
    private final Payloads payloads;
    private final Log log;
    private final Provider defaultProvider;
    private final TaskProcessor processor;
    private final MasterClient master;
    private final HealthFile healthFile;
    private final LongSupplier clock;
    private final ExecutorService taskRunner = Executors.newSingleThreadExecutor(daemon("task-runner"));
    private final ScheduledExecutorService heartbeats =
            Executors.newSingleThreadScheduledExecutor(daemon("heartbeat"));
    private MqttLink mqtt;

    /** A task taken while the result of the task in hand was being sent; it runs right after. */
    private record Waiting(TaskMessage task, long receivedMs) {
    }

    // Guarded by "this": the task in hand (null when idle), whether its result is being sent,
    // the task waiting to run next (null if none), and whether SIGTERM has arrived.
    private TaskMessage current;
    /** System.nanoTime() of the last accepted MQTT connect (docs/protocol.md, "MQTT session": a quick drop is a duplicate id). */
    private volatile long connectedAtNanos = System.nanoTime();
    /** Connections in a row the broker closed within a keepalive (only paho's callback thread touches it). */
    private int quickDrops;
    private boolean sending;
    private Waiting next;
    private boolean stopping;

    Worker(Config config, Log log, Provider defaultProvider, TaskProcessor processor, MasterClient master,
           LongSupplier clock) {
        this.config = config;
        this.topics = new Topics(config.topicPrefix(), config.workerId());
        this.payloads = new Payloads(config.workerId(), config.nodeHostname());
        this.log = log;
        this.defaultProvider = defaultProvider;
        this.processor = processor;
        this.master = master;
        this.healthFile = new HealthFile(config.healthFile());
        this.clock = clock;
    }

    Topics topics() {
        return topics;
    }

    Payloads payloads() {
        return payloads;
    }

    /**
     * Heartbeats until shutdown, starting before the connect: HEALTH_FILE stays
     * fresh while the broker is still unreachable (heartbeats are dropped until
     * connected), so the container is not restarted for the broker's outage.
     */
    void start(MqttLink link) throws InterruptedException {
        this.mqtt = link;
        heartbeats.scheduleAtFixedRate(this::heartbeat, 0, config.heartbeatIntervalMs(), TimeUnit.MILLISECONDS);
        link.connect();
    }

    // ---- MQTT events (Paho's callback thread: never block, never throw) ----

    @Override
    public void onConnected(boolean reconnect) {
        connectedAtNanos = System.nanoTime();
        log.info((reconnect ? "MQTT reconnected to " : "MQTT connected to ") + mqtt.brokerUri());
        mqtt.subscribeToTasks();
        synchronized (this) {
            if (stopping) {
                return;
            }
            mqtt.publish(topics.register(), payloads.register(defaultProvider, clock.getAsLong()));
            publishStatus();
        }
    }

    @Override
    public void onConnectionLost(Throwable cause) {
        long livedMs = (System.nanoTime() - connectedAtNanos) / 1_000_000;
        quickDrops = livedMs < MqttLink.KEEPALIVE_S * 1000L ? quickDrops + 1 : 0;
        if (quickDrops >= 2) {
            log.error(MqttLink.duplicateIdHint(config.workerId(), livedMs));
            return;
        }
        log.warn("MQTT connection lost (" + (cause == null ? "unknown" : cause.getClass().getSimpleName())
                + "), reconnecting");
    }

    @Override
    public void onTaskPayload(byte[] payload) {
        long receivedMs = clock.getAsLong();
        try {
            accept(TaskParser.parse(payload), receivedMs);
        } catch (InvalidPayloadException e) {
            event(LogLevel.ERROR, "dropped a malformed task message on " + topics.tasks() + ": " + e.getMessage(),
                    null);
        } catch (RuntimeException e) {
            // A Paho callback that throws drops the connection: log and carry on instead.
            log.error("unexpected error handling a task message: " + e);
        }
    }

    private synchronized void accept(TaskMessage task, long receivedMs) {
        TaskArrival arrival = TaskArrival.decide(current == null ? null : current.taskId(), sending,
                next == null ? null : next.task().taskId(), stopping, task.taskId());
        switch (arrival) {
            case IGNORE_DUPLICATE -> log.info("task " + task.taskId() + " delivered again (in hand or waiting); ignored");
            case REJECT -> reject(task.taskId(), stopping ? "shutting down" : "busy with task " + current.taskId());
            case RUN_NEXT -> {
                // The master freed this worker on accepting the result still in flight (rule 2).
                log.info("task " + task.taskId() + " taken; it runs once SendResult for task "
                        + current.taskId() + " returns");
                next = new Waiting(task, receivedMs);
            }
            case RUN_NOW -> {
                // No "status busy" here (docs/protocol.md "Per task"): the master counts this worker busy
                // from the lease on, and the heartbeats say busy with the task id while it runs.
                current = task;
                taskRunner.execute(() -> run(task, receivedMs));
            }
        }
    }

    /** Refuses a task so the master re-queues it; callers hold the lock. */
    private void reject(String taskId, String why) {
        log.warn("rejected task " + taskId + ": " + why);
        // Busy names the task in hand; with none in hand the worker is leaving (as in Python and Go).
        WorkerStatus status = current == null ? WorkerStatus.OFFLINE : WorkerStatus.BUSY;
        mqtt.publish(topics.status(), payloads.statusRejecting(status,
                current == null ? null : current.taskId(), taskId, clock.getAsLong()));
    }

    // ---- the task ----

    private void run(TaskMessage task, long receivedMs) {
        boolean accepted = false;
        try {
            event(LogLevel.INFO, "task " + task.taskId() + " started", task.taskId());
            TaskResult result = processor.process(task, receivedMs);
            reportOutcome(result);
            markSending();
            accepted = deliver(result);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            event(LogLevel.ERROR, "task " + task.taskId() + " failed unexpectedly: " + e.getClass().getSimpleName(),
                    task.taskId());
        } finally {
            finish(accepted);
        }
    }

    /** From here on the master may accept the result and lease the next task (see {@link #accept}). */
    private synchronized void markSending() {
        sending = true;
    }

    private void reportOutcome(TaskResult result) {
        long tookMs = result.getTimings().getFinishedMs() - result.getTimings().getReceivedMs();
        if (result.getError().isEmpty()) {
            event(LogLevel.INFO, "task " + result.getTaskId() + " done in " + tookMs + " ms ("
                    + result.getProvider() + ")", result.getTaskId());
        } else {
            event(LogLevel.ERROR, "task " + result.getTaskId() + " failed: " + result.getError(), result.getTaskId());
        }
    }

    /** @return whether the master accepted the result (and so already counts this worker free) */
    private boolean deliver(TaskResult result) throws InterruptedException {
        SendOutcome outcome = master.sendResult(result, config.resultRetryDeadlineMs());
        String taskId = result.getTaskId();
        if (!outcome.delivered()) {
            event(LogLevel.ERROR, "SendResult for task " + taskId + " rejected: " + outcome.failure()
                    + (outcome.failureDetail() == null ? "" : " (" + outcome.failureDetail() + ")")
                    + " after " + outcome.attempts() + " attempt(s)", taskId);
        } else if (outcome.ack().getDuplicate()) {
            log.info("SendResult for task " + taskId + ": master already had a result (duplicate)");
        } else if (!outcome.ack().getAccepted()) {
            log.warn("SendResult for task " + taskId + ": master did not accept the result");
        } else {
            log.info("SendResult for task " + taskId + " accepted after " + outcome.attempts() + " attempt(s)");
        }
        return outcome.accepted();
    }

    /**
     * The task in hand is over: run the waiting task if there is one, else tell the master this
     * worker is free unless it already knows (an accepted result freed it). Statuses cost CPU in
     * the worker, the broker and the master, so none is sent that the master does not need.
     */
    private synchronized void finish(boolean resultAccepted) {
        current = null;
        sending = false;
        if (next != null) {
            Waiting waiting = next;
            next = null;
            current = waiting.task();
            taskRunner.execute(() -> run(waiting.task(), waiting.receivedMs()));
        } else if (!stopping && !resultAccepted) {
            publishStatus();
        }
        notifyAll(); // wakes a waiting shutdown
    }

    // ---- heartbeats, status, log events ----

    private void heartbeat() {
        long now = clock.getAsLong();
        try {
            healthFile.write(now);
        } catch (IOException | RuntimeException e) {
            log.error("cannot write HEALTH_FILE " + config.healthFile() + ": " + e.getClass().getSimpleName());
        }
        try {
            TaskMessage task;
            List<String> held = new ArrayList<>(2);
            synchronized (this) {
                task = current;
                if (current != null) held.add(current.taskId());
                if (next != null) held.add(next.task().taskId());
            }
            mqtt.publish(topics.heartbeat(), payloads.heartbeat(task == null ? WorkerStatus.IDLE : WorkerStatus.BUSY,
                    task == null ? null : task.taskId(), held, now));
        } catch (RuntimeException e) {
            // an exception would cancel every later heartbeat
            log.error("heartbeat failed: " + e);
        }
    }

    /** Publishes the current status; callers hold the lock so statuses leave in order. */
    private void publishStatus() {
        WorkerStatus status = current == null ? WorkerStatus.IDLE : WorkerStatus.BUSY;
        mqtt.publish(topics.status(), payloads.status(status, current == null ? null : current.taskId(),
                clock.getAsLong()));
    }

    /** A log line here and, for the cluster, on P/logs; neither below LOG_LEVEL. */
    private void event(LogLevel level, String message, String taskId) {
        if (!log.enabled(level)) {
            return;
        }
        log.write(level, message);
        if (mqtt != null) {
            mqtt.publish(topics.logs(), payloads.log(level, message, taskId, clock.getAsLong()));
        }
    }

    // ---- SIGTERM ----

    /**
     * Stop taking tasks, let the one in hand finish within SHUTDOWN_GRACE_MS, then publish
     * offline and disconnect. Returns when the worker may exit.
     */
    void shutdown() {
        String unfinished = awaitTaskInHand();
        heartbeats.shutdownNow(); // no heartbeat may follow the offline status
        try {
            heartbeats.awaitTermination(1, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (unfinished != null) {
            log.warn("SHUTDOWN_GRACE_MS ran out with task " + unfinished + " unfinished; the master will re-dispatch it");
        }
        if (mqtt != null) {
            boolean sent = mqtt.publishAndWait(topics.status(), payloads.offline(clock.getAsLong()),
                    OFFLINE_ACK_TIMEOUT_MS);
            log.info(sent ? "published status offline" : "could not publish status offline (broker unreachable)");
            mqtt.close(OFFLINE_ACK_TIMEOUT_MS);
        }
        master.close();
        log.info("stopped");
    }

    /** @return the id of the task still in hand when the grace ran out, or null */
    private synchronized String awaitTaskInHand() {
        stopping = true;
        long deadline = clock.getAsLong() + config.shutdownGraceMs();
        if (next != null) {
            // The grace covers the task in hand only: the waiting one goes back to the master's queue.
            reject(next.task().taskId(), "shutting down");
            next = null;
        }
        if (current != null) {
            log.info("SIGTERM: finishing task " + current.taskId() + " (grace " + config.shutdownGraceMs() + " ms)");
        }
        try {
            while (current != null) {
                long left = deadline - clock.getAsLong();
                if (left <= 0) {
                    return current.taskId();
                }
                wait(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return current == null ? null : current.taskId();
        }
        return null;
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return runnable -> {
            Thread thread = new Thread(runnable, name);
            thread.setDaemon(true);
            return thread;
        };
    }
}
