package io.aiswarm.worker;

import io.aiswarm.v1.TaskResult;
import io.aiswarm.v1.Timings;
import io.grpc.StatusRuntimeException;
import java.util.function.LongSupplier;

/**
 * One task from message to result: credential fetch if the task has one, provider call,
 * simulated work. Sending the result is the caller's job. An LLM failure is an error result.
 */
final class TaskProcessor {
    /** Waits for the simulated work; replaceable in tests. */
    @FunctionalInterface
    interface Sleeper {
        void sleep(long ms) throws InterruptedException;
    }

    private final Config config;
    private final ProviderSelector selector;
    private final LlmClient llm;
    private final MasterClient master;
    private final Log log;
    private final LongSupplier clock;
    private final Sleeper sleeper;

    TaskProcessor(Config config, ProviderSelector selector, LlmClient llm, MasterClient master, Log log,
                  LongSupplier clock, Sleeper sleeper) {
        this.config = config;
        this.selector = selector;
        this.llm = llm;
        this.master = master;
        this.log = log;
        this.clock = clock;
        this.sleeper = sleeper;
    }

    TaskResult process(TaskMessage task, long receivedMs) throws InterruptedException {
        // The user's key is only fetched when it can be used: not with LLM_PROVIDER=offline (docs/protocol.md).
        boolean wantsKey = task.hasCredential() && config.llmProvider() != ProviderMode.OFFLINE;
        String userKey = wantsKey ? fetchUserKey(task.taskId()) : null;
        ProviderChoice choice = selector.choose(userKey);
        TaskResult.Builder result = TaskResult.newBuilder()
                .setTaskId(task.taskId())
                .setWorkerId(config.workerId())
                .setLanguage(Config.LANGUAGE)
                .setNode(config.nodeHostname())
                .setProvider(choice.provider().wireName());
        long startedMs = clock.getAsLong();
        try {
            result.setAnswer(llm.ask(choice, task.query()));
        } catch (LlmException e) {
            result.setError(e.getMessage());
        }
        // The contract (docs/protocol.md): simulated work follows the provider call, success or not.
        sleeper.sleep(config.simulatedWorkMs());
        return result.setTimings(Timings.newBuilder()
                        .setReceivedMs(receivedMs)
                        .setStartedMs(startedMs)
                        .setFinishedMs(clock.getAsLong()))
                .build();
    }

    /**
     * The user's key, or null. If the master cannot give it (restarted, unreachable, refused),
     * the task runs on the worker's own provider settings, as after a master restart.
     */
    private String fetchUserKey(String taskId) {
        try {
            return master.fetchCredential(taskId, config.workerId()).orElse(null);
        } catch (StatusRuntimeException e) {
            log.warn("GetTaskCredential for task " + taskId + " failed: " + e.getStatus().getCode()
                    + "; using this worker's own provider settings");
            return null;
        }
    }
}
