package io.aiswarm.worker;

import java.nio.file.Path;

/**
 * The worker's validated settings, one field per variable of docs/protocol.md "Worker environment".
 * Optional values are null when unset. Built by {@link ConfigLoader}.
 */
public record Config(
        String workerId,
        String nodeHostname,
        String taskSlot,
        String mqttHost,
        int mqttPort,
        String mqttUsername,
        String mqttPassword,
        boolean mqttTls,
        Path mqttCaFile,
        String topicPrefix,
        String masterGrpcAddr,
        String grpcToken,
        ProviderMode llmProvider,
        String geminiApiKey,
        String geminiBaseUrl,
        String geminiModel,
        String openaiBaseUrl,
        String openaiApiKey,
        String openaiModel,
        long llmTimeoutMs,
        long simulatedWorkMs,
        long heartbeatIntervalMs,
        long resultRetryDeadlineMs,
        long shutdownGraceMs,
        Path healthFile,
        LogLevel logLevel) {

    public static final String LANGUAGE = "java";

    /** Safe to log: secrets are shown only as set or unset. */
    @Override
    public String toString() {
        return "Config[worker_id=" + workerId
                + ", node=" + nodeHostname
                + ", task_slot=" + taskSlot
                + ", mqtt=" + (mqttTls ? "ssl://" : "tcp://") + mqttHost + ":" + mqttPort
                + ", mqtt_username=" + presence(mqttUsername)
                + ", mqtt_password=" + presence(mqttPassword)
                + ", topic_prefix=" + topicPrefix
                + ", master=" + masterGrpcAddr
                + ", grpc_token=" + presence(grpcToken)
                + ", llm_provider=" + llmProvider.wireName()
                + ", gemini_api_key=" + presence(geminiApiKey)
                + ", gemini_base_url=" + geminiBaseUrl
                + ", gemini_model=" + geminiModel
                + ", openai_base_url=" + openaiBaseUrl
                + ", openai_api_key=" + presence(openaiApiKey)
                + ", openai_model=" + openaiModel
                + ", llm_timeout_ms=" + llmTimeoutMs
                + ", simulated_work_ms=" + simulatedWorkMs
                + ", heartbeat_interval_ms=" + heartbeatIntervalMs
                + ", result_retry_deadline_ms=" + resultRetryDeadlineMs
                + ", shutdown_grace_ms=" + shutdownGraceMs
                + ", health_file=" + healthFile
                + ", log_level=" + logLevel.wireName() + "]";
    }

    private static String presence(String secret) {
        return secret == null ? "unset" : "set";
    }
}
