package io.aiswarm.worker;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Calls the chosen provider over HTTP; every failure becomes an {@link LlmException}. */
public final class LlmClient {
    private final HttpClient http;
    private final String geminiBaseUrl;
    private final String geminiModel;
    private final String openaiBaseUrl;
    private final String openaiModel;
    private final long timeoutMs;
    private final String workerId;

    public LlmClient(Config config) {
        this(config.geminiBaseUrl(), config.geminiModel(), config.openaiBaseUrl(), config.openaiModel(),
                config.llmTimeoutMs(), config.workerId());
    }

    LlmClient(String geminiBaseUrl, String geminiModel, String openaiBaseUrl, String openaiModel, long timeoutMs,
              String workerId) {
        // HTTP/1.1 only: local OpenAI-compatible servers rarely speak h2c, and one request per task gains
        // nothing from HTTP/2.
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofMillis(timeoutMs))
                .build();
        this.geminiBaseUrl = geminiBaseUrl;
        this.geminiModel = geminiModel;
        this.openaiBaseUrl = openaiBaseUrl;
        this.openaiModel = openaiModel;
        this.timeoutMs = timeoutMs;
        this.workerId = workerId;
    }

    public String ask(ProviderChoice choice, String query) throws LlmException, InterruptedException {
        try {
            return switch (choice.provider()) {
                case OFFLINE -> OfflineAnswer.forQuery(query, workerId);
                case GEMINI -> askGemini(choice.apiKey(), query);
                case OPENAI -> askOpenAi(choice.apiKey(), query);
            };
        } catch (IllegalArgumentException e) {
            // The JDK rejects a key or URL it cannot put in a request, and its message
            // quotes the value: report the failure without the message.
            throw new LlmException(choice.provider(), "invalid API key or URL");
        }
    }

    private String askGemini(String apiKey, String query) throws LlmException, InterruptedException {
        if (apiKey == null) {
            throw new LlmException(Provider.GEMINI, "no API key configured (GEMINI_API_KEY)");
        }
        HttpRequest request = jsonPost(geminiBaseUrl + GeminiApi.path(geminiModel), GeminiApi.requestBody(query))
                .header("x-goog-api-key", apiKey)
                .build();
        return GeminiApi.answer(send(Provider.GEMINI, request));
    }

    private String askOpenAi(String apiKey, String query) throws LlmException, InterruptedException {
        if (openaiBaseUrl == null) {
            throw new LlmException(Provider.OPENAI, "no base URL configured (OPENAI_BASE_URL)");
        }
        HttpRequest.Builder request = jsonPost(openaiBaseUrl + OpenAiApi.PATH, OpenAiApi.requestBody(openaiModel, query));
        if (apiKey != null) {
            request.header("Authorization", "Bearer " + apiKey);
        }
        return OpenAiApi.answer(send(Provider.OPENAI, request.build()));
    }

    private HttpRequest.Builder jsonPost(String url, String body) {
        return HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofMillis(timeoutMs))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    /**
     * Sends the request and returns a 2xx body. The request timeout covers only the wait for
     * headers, so the whole exchange is also bounded here: a server that sends headers and then
     * stalls must not hold the worker.
     */
    private String send(Provider provider, HttpRequest request) throws LlmException, InterruptedException {
        CompletableFuture<HttpResponse<String>> call = http.sendAsync(request, HttpResponse.BodyHandlers.ofString());
        HttpResponse<String> response;
        try {
            response = call.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            call.cancel(true);
            throw timeout(provider);
        } catch (InterruptedException e) {
            call.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            throw failure(provider, e.getCause());
        }
        if (response.statusCode() / 100 != 2) {
            throw new LlmException(provider, "HTTP " + response.statusCode());
        }
        return response.body();
    }

    private LlmException timeout(Provider provider) {
        return new LlmException(provider, "timeout after " + timeoutMs + " ms");
    }

    /** Names only the kind of failure: exception messages could echo request details. */
    private LlmException failure(Provider provider, Throwable cause) {
        if (cause instanceof HttpTimeoutException) {
            return timeout(provider);
        }
        String kind = cause instanceof IOException ? "request failed" : "unexpected failure";
        return new LlmException(provider, kind + " (" + cause.getClass().getSimpleName() + ")");
    }
}
