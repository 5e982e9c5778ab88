package io.aiswarm.worker;

import static io.aiswarm.worker.MqttProbe.onTopic;
import static io.aiswarm.worker.MqttProbe.typed;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.aiswarm.v1.TaskResult;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The whole worker as a process against a real Mosquitto on a free loopback port and a fake
 * master gRPC server in this JVM: the contract of docs/protocol.md end to end.
 */
class WorkerProcessTest {
    private static final String TOKEN = "right-token";
    private static final long WAIT_MS = 15_000;
    private static MosquittoBroker broker;

    @TempDir
    Path dir;
    private String prefix;
    private String workerId;
    private Topics topics;
    private FakeMaster master;
    private MqttProbe probe;
    private WorkerProcess worker;

    @BeforeAll
    static void startBroker() throws Exception {
        if (MosquittoBroker.binary() == null) {
            System.out.println("SKIPPED WorkerProcessTest: mosquitto is not installed (apt-get install -y mosquitto)");
        }
        Assumptions.assumeTrue(MosquittoBroker.binary() != null,
                "mosquitto is not installed (apt-get install -y mosquitto)");
        broker = MosquittoBroker.start();
    }

    @AfterAll
    static void stopBroker() throws Exception {
        if (broker != null) {
            broker.close();
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        prefix = "it-" + UUID.randomUUID().toString().substring(0, 8);
        workerId = "java-it-" + UUID.randomUUID().toString().substring(0, 4);
        topics = new Topics(prefix, workerId);
        master = new FakeMaster(TOKEN);
        probe = new MqttProbe(broker.url(), prefix + "/#");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (worker != null) {
            worker.close();
            System.out.println("---- worker output ----\n" + worker.output());
        }
        probe.close();
        master.close();
    }

    private Map<String, String> env(String... overrides) {
        Map<String, String> env = new HashMap<>();
        env.put("WORKER_ID", workerId);
        env.put("NODE_HOSTNAME", "vm-test");
        env.put("MQTT_HOST", "127.0.0.1");
        env.put("MQTT_PORT", Integer.toString(broker.port()));
        env.put("MQTT_TOPIC_PREFIX", prefix);
        env.put("MASTER_GRPC_ADDR", master.address());
        env.put("GRPC_TOKEN", TOKEN);
        env.put("SIMULATED_WORK_MS", "300");
        env.put("HEARTBEAT_INTERVAL_MS", "200");
        env.put("RESULT_RETRY_DEADLINE_MS", "2000");
        env.put("LLM_TIMEOUT_MS", "2000");
        env.put("HEALTH_FILE", dir.resolve("worker.health").toString());
        for (int i = 0; i < overrides.length; i += 2) {
            env.put(overrides[i], overrides[i + 1]);
        }
        return env;
    }

    private void startWorker(String... overrides) throws Exception {
        worker = WorkerProcess.start(env(overrides));
        probe.await("status idle after start", WAIT_MS, typed(topics.status(), "status", "idle"));
    }

    private static String task(String taskId, boolean hasCredential) {
        return "{\"v\":1,\"type\":\"task\",\"task_id\":\"" + taskId + "\",\"query\":\"What is Docker Swarm?\","
                + "\"lease_ms\":30000,\"has_credential\":" + hasCredential + ",\"ts\":" + System.currentTimeMillis() + "}";
    }

    private Predicate<MqttProbe.Received> busyHeartbeat(String taskId) {
        return r -> r.topic().equals(topics.heartbeat())
                && "busy".equals(r.json().path("status").asString()) && taskId.equals(r.json().path("task_id").asString());
    }

    /** An idle heartbeat: the worker holds no task (an accepted result frees it without a status). */
    private Predicate<MqttProbe.Received> idleHeartbeat() {
        return typed(topics.heartbeat(), "status", "idle");
    }

    private static Predicate<MqttProbe.Received> idleStatus(String topic) {
        return typed(topic, "status", "idle");
    }

    private static Predicate<MqttProbe.Received> rejecting(String topic, String taskId) {
        return typed(topic, "rejected_task_id", taskId);
    }

    private Predicate<MqttProbe.Received> startedEvent(String taskId) {
        return r -> r.topic().equals(topics.logs())
                && taskId.equals(r.json().path("task_id").asString()) && r.payload().contains("started");
    }

    private static boolean isNonNegativeInteger(JsonNode node) {
        return node != null && node.isIntegralNumber() && node.asLong() >= 0;
    }

    @Test
    void registersHeartbeatsAnswersTasksAndStopsCleanly() throws Exception {
        startWorker();

        JsonNode register = probe.await("register", WAIT_MS, onTopic(topics.register())).json();
        assertEquals(1, register.get("v").asInt());
        assertEquals("register", register.get("type").asString());
        assertEquals(workerId, register.get("worker_id").asString());
        assertEquals("java", register.get("language").asString());
        assertEquals("vm-test", register.get("node").asString());
        assertEquals("offline", register.get("provider").asString());
        assertTrue(isNonNegativeInteger(register.get("ts")));

        JsonNode heartbeat = probe.await("heartbeat", WAIT_MS, onTopic(topics.heartbeat())).json();
        assertEquals(workerId, heartbeat.get("worker_id").asString());
        assertEquals("java", heartbeat.get("language").asString());
        assertEquals("vm-test", heartbeat.get("node").asString());
        assertEquals("idle", heartbeat.get("status").asString());
        assertTrue(heartbeat.get("task_id").isNull());
        assertEquals(0, Healthcheck.run(Map.of("HEALTH_FILE", dir.resolve("worker.health").toString())),
                "HEALTH_FILE is fresh");

        // Malformed messages are logged and dropped; the worker keeps serving.
        probe.publish(topics.tasks(), "not json");
        probe.publish(topics.tasks(), "{\"v\":1,\"type\":\"task\"}");
        probe.publish(topics.tasks(), "{\"v\":1,\"type\":\"task\",\"task_id\":\"big\",\"query\":\"" + "x".repeat(70_000)
                + "\",\"lease_ms\":1,\"has_credential\":false,\"ts\":1}");
        worker.awaitLine(WAIT_MS, "dropped a malformed task message", "not valid JSON");
        worker.awaitLine(WAIT_MS, "dropped a malformed task message", "64 KiB");
        probe.await("error log event for the malformed task", WAIT_MS, typed(topics.logs(), "level", "error"));

        int before = probe.count();
        probe.publish(topics.tasks(), task("q-1", false));
        probe.awaitFrom(before, "q-1 taken (its started event)", WAIT_MS, startedEvent("q-1"));
        // The same task again (a QoS 1 duplicate) is ignored; another one is refused while busy.
        probe.publish(topics.tasks(), task("q-1", false));
        probe.publish(topics.tasks(), task("q-2", false));
        JsonNode rejection = probe.await("rejection of q-2", WAIT_MS,
                typed(topics.status(), "rejected_task_id", "q-2")).json();
        assertEquals("busy", rejection.get("status").asString());
        assertEquals("q-1", rejection.get("task_id").asString());
        probe.await("busy heartbeat naming q-1", WAIT_MS, busyHeartbeat("q-1"));

        TaskResult result = master.awaitResult(WAIT_MS);
        assertEquals("q-1", result.getTaskId());
        assertEquals(workerId, result.getWorkerId());
        assertEquals("java", result.getLanguage());
        assertEquals("vm-test", result.getNode());
        assertEquals("offline", result.getProvider());
        assertTrue(result.getAnswer().startsWith("[offline]"), result.getAnswer());
        assertEquals("", result.getError());
        long received = result.getTimings().getReceivedMs();
        long started = result.getTimings().getStartedMs();
        long finished = result.getTimings().getFinishedMs();
        assertTrue(received > 0 && received <= started && started <= finished, result.getTimings().toString());
        assertTrue(finished - started >= 300, "SIMULATED_WORK_MS honoured: " + (finished - started) + " ms");

        probe.awaitFrom(before, "idle heartbeat after the task", WAIT_MS, idleHeartbeat());
        // At the default LOG_LEVEL (info) the task's info events reach P/logs.
        JsonNode startedEvent = probe.await("task started log", WAIT_MS, startedEvent("q-1")).json();
        assertEquals("info", startedEvent.get("level").asString());
        assertEquals(workerId, startedEvent.get("source").asString());
        JsonNode done = probe.await("task done log", WAIT_MS, r -> r.topic().equals(topics.logs())
                && "q-1".equals(r.json().path("task_id").asString()) && r.payload().contains("done")).json();
        assertEquals("info", done.get("level").asString());
        assertNull(master.results.poll(500, TimeUnit.MILLISECONDS), "exactly one result");
        assertFalse(probe.all().stream().anyMatch(r -> r.payload().contains("\"rejected_task_id\":\"q-1\"")),
                "the duplicate of the task in hand is ignored, not rejected");

        worker.terminate();
        assertEquals(0, worker.awaitExit(WAIT_MS));
        probe.awaitFrom(before, "status offline", WAIT_MS, typed(topics.status(), "status", "offline"));
    }

    @Test
    void aTaskWhoseResultIsAcceptedPublishesNoStatusAtAll() throws Exception {
        startWorker("SIMULATED_WORK_MS", "600");
        try (MqttProbe statuses = new MqttProbe(broker.url(), topics.status())) {
            int before = probe.count();
            probe.publish(topics.tasks(), task("q-quiet", false));
            probe.awaitFrom(before, "busy heartbeat while the task runs", WAIT_MS, busyHeartbeat("q-quiet"));
            assertEquals("q-quiet", master.awaitResult(WAIT_MS).getTaskId());
            int afterResult = probe.count();

            // The master freed the worker on accepting the result: no status, not even idle.
            probe.awaitFrom(afterResult, "idle heartbeat after the accepted result", WAIT_MS, idleHeartbeat());
            Thread.sleep(300);
            assertEquals(0, statuses.count(), "no status for the whole task: " + statuses.all());
        }
    }

    @Test
    void aResultTheMasterDidNotAcceptIsFollowedByStatusIdle() throws Exception {
        startWorker("SIMULATED_WORK_MS", "0");
        master.answerDuplicate();
        int before = probe.count();
        probe.publish(topics.tasks(), task("q-dup", false));
        assertEquals("q-dup", master.awaitResult(WAIT_MS).getTaskId());
        JsonNode idle = probe.awaitFrom(before, "idle after a duplicate answer", WAIT_MS,
                idleStatus(topics.status())).json();
        assertTrue(idle.get("task_id").isNull());

        // A final gRPC error (not retried) also leaves the master unaware: idle again.
        master.failNextResults(1, io.grpc.Status.PERMISSION_DENIED);
        int beforeDenied = probe.count();
        probe.publish(topics.tasks(), task("q-denied", false));
        worker.awaitLine(WAIT_MS, "PERMISSION_DENIED", "q-denied");
        probe.awaitFrom(beforeDenied, "idle after PERMISSION_DENIED", WAIT_MS, idleStatus(topics.status()));
        assertEquals(2, master.sendResultCalls.get(), "one call per task, the refused one not retried");
    }

    @Test
    void aTaskArrivingWhileTheResultIsBeingSentRunsNextAndAThirdIsRejected() throws Exception {
        startWorker("SIMULATED_WORK_MS", "0");
        master.delayAnswers(600);
        try (MqttProbe statuses = new MqttProbe(broker.url(), topics.status())) {
            probe.publish(topics.tasks(), task("q-first", false));
            // The result has reached the master, whose answer is 600 ms away: the worker is sending.
            assertEquals("q-first", master.awaitResult(WAIT_MS).getTaskId());
            probe.publish(topics.tasks(), task("q-second", false));
            probe.publish(topics.tasks(), task("q-third", false));

            JsonNode rejection = statuses.await("q-third rejected: one task already waits", WAIT_MS,
                    rejecting(topics.status(), "q-third")).json();
            assertEquals("busy", rejection.get("status").asString());
            assertEquals("q-first", rejection.get("task_id").asString());
            assertEquals("q-second", master.awaitResult(WAIT_MS).getTaskId(), "q-second ran after q-first");
            int afterSecond = probe.count();
            probe.awaitFrom(afterSecond, "idle heartbeat after q-second", WAIT_MS, idleHeartbeat());
            Thread.sleep(300);

            assertFalse(statuses.all().stream().anyMatch(rejecting(topics.status(), "q-second")),
                    "q-second was taken, not rejected: " + statuses.all());
            assertEquals(1, statuses.count(), "the rejection is the only status: " + statuses.all());
            assertNull(master.results.poll(), "q-third never ran");
        }
    }

    @Test
    void sigtermRejectsTheTaskWaitingBehindAResultBeingSent() throws Exception {
        startWorker("SIMULATED_WORK_MS", "0", "SHUTDOWN_GRACE_MS", "10000");
        master.delayAnswers(1500);
        probe.publish(topics.tasks(), task("q-sending", false));
        assertEquals("q-sending", master.awaitResult(WAIT_MS).getTaskId());
        probe.publish(topics.tasks(), task("q-waiting", false));
        worker.awaitLine(WAIT_MS, "task q-waiting taken");

        worker.terminate();
        JsonNode rejection = probe.await("q-waiting handed back at SIGTERM", WAIT_MS,
                rejecting(topics.status(), "q-waiting")).json();
        assertEquals("busy", rejection.get("status").asString());
        assertEquals("q-sending", rejection.get("task_id").asString());
        assertEquals(0, worker.awaitExit(WAIT_MS));
        probe.await("offline", WAIT_MS, typed(topics.status(), "status", "offline"));
        assertNull(master.results.poll(), "q-waiting never ran");
        assertTrue(worker.output().contains("SendResult for task q-sending accepted"),
                "the grace let the result in flight finish:\n" + worker.output());
    }

    @Test
    void logLevelWarnKeepsTheTaskInfoEventsOffTheLogsTopicAndStdout() throws Exception {
        startWorker("LOG_LEVEL", "warn", "SIMULATED_WORK_MS", "0");
        int before = probe.count();
        probe.publish(topics.tasks(), task("q-warn", false));
        assertEquals("q-warn", master.awaitResult(WAIT_MS).getTaskId());
        probe.awaitFrom(before, "idle heartbeat after the task", WAIT_MS, idleHeartbeat());

        // An error event still goes out: P/logs works, and it is the only log message seen.
        probe.publish(topics.tasks(), "not json");
        probe.awaitFrom(before, "error event for the malformed task", WAIT_MS, typed(topics.logs(), "level", "error"));
        List<MqttProbe.Received> logs = probe.all().stream().filter(onTopic(topics.logs())).toList();
        assertEquals(1, logs.size(), "only the error event on P/logs: " + logs);
        assertFalse(worker.output().contains(" INFO [" + workerId + "]"), "no info line on stdout:\n" + worker.output());
        worker.awaitLine(WAIT_MS, "ERROR", "dropped a malformed task message");
    }

    @Test
    void wrongTokenIsLoggedWithTheCodeAndTaskIdAndTheWorkerStaysUp() throws Exception {
        startWorker("GRPC_TOKEN", "wrong-token", "SIMULATED_WORK_MS", "0");
        int before = probe.count();
        probe.publish(topics.tasks(), task("q-auth", false));
        worker.awaitLine(WAIT_MS, "UNAUTHENTICATED", "q-auth");
        probe.await("error event on logs", WAIT_MS, r -> r.topic().equals(topics.logs())
                && "error".equals(r.json().path("level").asString()) && r.payload().contains("UNAUTHENTICATED"));
        probe.awaitFrom(before + 1, "idle again", WAIT_MS, typed(topics.status(), "status", "idle"));
        assertEquals(1, master.rejectedAuthorizations.size(), "one call, refused, not retried");
        assertEquals(0, master.sendResultCalls.get(), "the refused call never reached the service");
        assertFalse(worker.output().contains("wrong-token"), "the token is never logged");
        assertTrue(worker.isAlive());
    }

    @Test
    void userKeyIsFetchedByRpcUsedForGeminiAndNeverSeenOnTheBroker() throws Exception {
        String userKey = "user-key-" + UUID.randomUUID();
        try (FakeLlmServer gemini = new FakeLlmServer()) {
            gemini.respond(200, FakeLlmServer.geminiAnswer("Swarm answer"));
            master.giveUserKey("q-key", userKey);
            startWorker("GEMINI_BASE_URL", gemini.baseUrl(), "GEMINI_MODEL", "gemini-test", "SIMULATED_WORK_MS", "0");

            probe.publish(topics.tasks(), task("q-key", true));
            TaskResult result = master.awaitResult(WAIT_MS);
            assertFalse(result.toString().contains(userKey), "the key is never part of a result");
            assertEquals("gemini", result.getProvider());
            assertEquals("Swarm answer", result.getAnswer());
            assertEquals(workerId, master.credentialRequests.take().getWorkerId());
            assertEquals(userKey, gemini.requests.get(0).header("x-goog-api-key"));
            assertEquals("/v1beta/models/gemini-test:generateContent", gemini.requests.get(0).path());
            int afterResult = probe.count();
            probe.awaitFrom(afterResult, "idle heartbeat after the task", WAIT_MS, idleHeartbeat());
        }
        assertFalse(probe.all().stream().anyMatch(r -> r.payload().contains(userKey)), "the key never travels over MQTT");
        assertFalse(worker.output().contains(userKey), "the key is never logged");
    }

    @Test
    void providerFailureBecomesAnErrorResultAndTheWorkerKeepsServing() throws Exception {
        try (FakeLlmServer openai = new FakeLlmServer()) {
            openai.respond(500, "{\"error\":\"boom\"}");
            startWorker("LLM_PROVIDER", "openai", "OPENAI_BASE_URL", openai.baseUrl() + "/v1",
                    "OPENAI_API_KEY", "server-openai-key", "SIMULATED_WORK_MS", "0");
            JsonNode register = probe.await("register", WAIT_MS, onTopic(topics.register())).json();
            assertEquals("openai", register.get("provider").asString());

            probe.publish(topics.tasks(), task("q-500", false));
            TaskResult failed = master.awaitResult(WAIT_MS);
            assertEquals("q-500", failed.getTaskId());
            assertEquals("openai: HTTP 500", failed.getError());
            assertEquals("", failed.getAnswer());
            assertEquals("Bearer server-openai-key", openai.requests.get(0).header("authorization"));

            openai.respond(200, FakeLlmServer.openAiAnswer("recovered"));
            probe.await("idle heartbeat after the failure", WAIT_MS, r -> idleHeartbeat().test(r)
                    && r.json().path("ts").asLong() >= failed.getTimings().getFinishedMs());
            probe.publish(topics.tasks(), task("q-ok", false));
            TaskResult ok = master.awaitResult(WAIT_MS);
            assertEquals("q-ok", ok.getTaskId());
            assertEquals("recovered", ok.getAnswer());
            assertFalse(worker.output().contains("server-openai-key"));
        }
    }

    @Test
    void sigkillLeavesTheLastWill() throws Exception {
        startWorker();
        int before = probe.count();
        worker.kill();
        JsonNode will = probe.awaitFrom(before, "last will", WAIT_MS, typed(topics.status(), "status", "offline")).json();
        assertEquals(workerId, will.get("worker_id").asString());
        assertTrue(will.get("task_id").isNull());
        assertTrue(isNonNegativeInteger(will.get("ts")));
    }

    @Test
    void sigtermFinishesTheTaskInHandThenGoesOffline() throws Exception {
        startWorker("SIMULATED_WORK_MS", "1500", "SHUTDOWN_GRACE_MS", "10000");
        probe.publish(topics.tasks(), task("q-grace", false));
        probe.await("busy heartbeat", WAIT_MS, busyHeartbeat("q-grace"));
        int atSigterm = probe.count();
        worker.terminate();
        worker.awaitLine(WAIT_MS, "SIGTERM");
        probe.publish(topics.tasks(), task("q-late", false));
        probe.await("q-late refused while stopping", WAIT_MS, typed(topics.status(), "rejected_task_id", "q-late"));

        assertEquals("q-grace", master.awaitResult(WAIT_MS).getTaskId());
        assertEquals(0, worker.awaitExit(WAIT_MS));
        probe.awaitFrom(atSigterm, "offline", WAIT_MS, typed(topics.status(), "status", "offline"));
        assertFalse(probe.all().subList(atSigterm, probe.count()).stream()
                        .anyMatch(r -> r.topic().equals(topics.status()) && "idle".equals(r.json().path("status").asString())),
                "no idle after SIGTERM: the worker takes no more tasks");
    }

    @Test
    void sigtermWithATaskLongerThanTheGraceStillExitsPromptly() throws Exception {
        startWorker("SIMULATED_WORK_MS", "30000", "SHUTDOWN_GRACE_MS", "300");
        probe.publish(topics.tasks(), task("q-long", false));
        probe.await("busy heartbeat", WAIT_MS, busyHeartbeat("q-long"));
        long sent = System.currentTimeMillis();
        worker.terminate();
        assertEquals(0, worker.awaitExit(WAIT_MS));
        assertTrue(System.currentTimeMillis() - sent < 5_000, "exit soon after the grace");
        probe.await("offline", WAIT_MS, typed(topics.status(), "status", "offline"));
        assertNull(master.results.poll(), "no result: the master re-dispatches");
    }

    @Test
    void reconnectsAndRegistersAgainAfterTheBrokerRestarts() throws Exception {
        // A persistent broker and probe session: the probe then misses nothing while both reconnect.
        try (MosquittoBroker own = MosquittoBroker.start(true);
             MqttProbe ownProbe = new MqttProbe(own.url(), prefix + "/#", true)) {
            worker = WorkerProcess.start(env("MQTT_PORT", Integer.toString(own.port())));
            ownProbe.await("first register", WAIT_MS, onTopic(topics.register()));
            own.stop();
            worker.awaitLine(WAIT_MS, "MQTT connection lost");
            int before = ownProbe.count();
            own.launch();
            ownProbe.awaitFrom(before, "register after reconnect", WAIT_MS, onTopic(topics.register()));
            ownProbe.awaitFrom(before, "status idle after reconnect", WAIT_MS, typed(topics.status(), "status", "idle"));
            ownProbe.awaitFrom(before, "heartbeats after reconnect", WAIT_MS, onTopic(topics.heartbeat()));
            ownProbe.publish(topics.tasks(), task("q-after", false));
            assertEquals("q-after", master.awaitResult(WAIT_MS).getTaskId());
        }
    }

    @Test
    void badConfigurationExitsWithCode2NamingTheVariable() throws Exception {
        try (WorkerProcess bad = WorkerProcess.start(env("WORKER_ID", "not a valid id!"))) {
            assertEquals(2, bad.awaitExit(WAIT_MS));
            assertTrue(bad.output().contains("WORKER_ID"), bad.output());
        }
        Map<String, String> noToken = env("MQTT_PASSWORD", "broker-secret");
        noToken.remove("GRPC_TOKEN");
        try (WorkerProcess bad = WorkerProcess.start(noToken)) {
            assertEquals(2, bad.awaitExit(WAIT_MS));
            assertTrue(bad.output().contains("GRPC_TOKEN"), bad.output());
            assertFalse(bad.output().contains("broker-secret"));
        }
        try (WorkerProcess bad = WorkerProcess.start(env("HEARTBEAT_INTERVAL_MS", "soon"))) {
            assertEquals(2, bad.awaitExit(WAIT_MS));
            assertTrue(bad.output().contains("HEARTBEAT_INTERVAL_MS"), bad.output());
        }
        try (WorkerProcess bad = WorkerProcess.start(env("LOG_LEVEL", "loud"))) {
            assertEquals(2, bad.awaitExit(WAIT_MS));
            assertTrue(bad.output().contains("config error: LOG_LEVEL must be one of debug, info, warn, error, got \"loud\""), bad.output());
        }
    }

    @Test
    void startLineNamesIdLanguageNodeAndProviderWithoutSecrets() throws Exception {
        startWorker("GEMINI_API_KEY", "server-gemini-secret", "MQTT_PASSWORD", "", "LLM_PROVIDER", "auto");
        String line = worker.awaitLine(WAIT_MS, "starting worker");
        assertTrue(line.contains(workerId) && line.contains("language=java") && line.contains("node=vm-test")
                && line.contains("provider_mode=auto") && line.contains("default_provider=gemini"), line);
        assertFalse(worker.output().contains("server-gemini-secret"));
        assertFalse(worker.output().contains(TOKEN));
    }
}
