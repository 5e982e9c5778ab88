package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.ObjectMapper;

/** The real HTTP client code against fake Gemini and OpenAI-compatible servers on 127.0.0.1. */
class LlmClientTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "test-key-never-shown";
    private static final long TIMEOUT_MS = 700;

    private FakeLlmServer server;
    private LlmClient client;

    @BeforeEach
    void start() throws Exception {
        server = new FakeLlmServer();
        client = new LlmClient(server.baseUrl(), "gemini-test", server.baseUrl() + "/v1", "llama-test", TIMEOUT_MS,
                "java-test");
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private LlmException failure(Provider provider) {
        return assertThrows(LlmException.class, () -> client.ask(new ProviderChoice(provider, KEY), "q"));
    }

    @Test
    void geminiSuccessSendsTheContractRequest() throws Exception {
        server.respond(200, FakeLlmServer.geminiAnswer("Swarm is ", "Docker's orchestrator."));
        String answer = client.ask(new ProviderChoice(Provider.GEMINI, KEY), "What is Docker Swarm?");
        assertEquals("Swarm is Docker's orchestrator.", answer);

        FakeLlmServer.Request request = server.requests.get(0);
        assertEquals("POST", request.method());
        assertEquals("/v1beta/models/gemini-test:generateContent", request.path());
        assertEquals(KEY, request.header("x-goog-api-key"));
        assertTrue(request.header("content-type").startsWith("application/json"));
        assertEquals(JSON.readTree("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"What is Docker Swarm?\"}]}]}"),
                JSON.readTree(request.body()));
    }

    @Test
    void openAiSuccessSendsTheContractRequest() throws Exception {
        server.respond(200, FakeLlmServer.openAiAnswer("It orchestrates containers."));
        assertEquals("It orchestrates containers.", client.ask(new ProviderChoice(Provider.OPENAI, KEY), "q?"));
        FakeLlmServer.Request request = server.requests.get(0);
        assertEquals("/v1/chat/completions", request.path());
        assertEquals("Bearer " + KEY, request.header("authorization"));
        assertEquals(JSON.readTree("{\"model\":\"llama-test\",\"messages\":[{\"role\":\"user\",\"content\":\"q?\"}]}"),
                JSON.readTree(request.body()));
    }

    @Test
    void openAiWithoutKeySendsNoAuthorization() throws Exception {
        server.respond(200, FakeLlmServer.openAiAnswer("ok"));
        client.ask(new ProviderChoice(Provider.OPENAI, null), "q");
        assertNull(server.requests.get(0).header("authorization"));
    }

    @Test
    void http429And500BecomeErrorsNamingProviderAndStatus() {
        server.respond(429, "{\"error\":{\"message\":\"quota, key " + KEY + "\"}}");
        assertEquals("gemini: HTTP 429", failure(Provider.GEMINI).getMessage());
        server.respond(500, "oops");
        assertEquals("gemini: HTTP 500", failure(Provider.GEMINI).getMessage());
        assertEquals("openai: HTTP 500", failure(Provider.OPENAI).getMessage());
    }

    @Test
    void successWithoutAnswerIsAnError() {
        server.respond(200, "{\"candidates\":[]}");
        assertEquals("gemini: no answer in response", failure(Provider.GEMINI).getMessage());
    }

    @Test
    void serverThatNeverAnswersTimesOutWithinTheLimit() {
        server.respond(200, FakeLlmServer.geminiAnswer("too late")).delay(10_000);
        long started = System.currentTimeMillis();
        LlmException e = failure(Provider.GEMINI);
        long took = System.currentTimeMillis() - started;
        assertEquals("gemini: timeout after " + TIMEOUT_MS + " ms", e.getMessage());
        assertTrue(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 2_000, "took " + took + " ms");
    }

    @Test
    void unreachableServerIsAnErrorWithoutDetails() throws Exception {
        int closedPort;
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort(); // free a moment ago, closed now
        }
        LlmClient unreachable = new LlmClient("http://127.0.0.1:" + closedPort, "m", null, "m", TIMEOUT_MS, "w");
        LlmException e = assertThrows(LlmException.class,
                () -> unreachable.ask(new ProviderChoice(Provider.GEMINI, KEY), "q"));
        assertTrue(e.getMessage().startsWith("gemini: request failed"), e.getMessage());
    }

    @Test
    void aKeyThatCannotBeAHeaderIsAnErrorResultThatDoesNotQuoteIt() {
        String badKey = "sk-user-secret\nInjected: yes";
        LlmException error = assertThrows(LlmException.class,
                () -> client.ask(new ProviderChoice(Provider.GEMINI, badKey), "q"));
        assertEquals("gemini: invalid API key or URL", error.getMessage());
        assertTrue(server.requests.isEmpty());
    }

    @Test
    void missingSettingsAreErrorsNotCalls() {
        LlmClient bare = new LlmClient(server.baseUrl(), "m", null, "m", TIMEOUT_MS, "w");
        assertTrue(assertThrows(LlmException.class, () -> bare.ask(new ProviderChoice(Provider.GEMINI, null), "q"))
                .getMessage().startsWith("gemini: no API key"));
        assertTrue(assertThrows(LlmException.class, () -> bare.ask(new ProviderChoice(Provider.OPENAI, null), "q"))
                .getMessage().startsWith("openai: no base URL"));
        assertTrue(server.requests.isEmpty());
    }

    @Test
    void offlineNeedsNoServer() throws Exception {
        assertTrue(client.ask(new ProviderChoice(Provider.OFFLINE, null), "q").startsWith("[offline]"));
        assertTrue(server.requests.isEmpty());
    }

    @Test
    void errorsNeverContainTheKey() {
        server.respond(403, KEY);
        assertFalse(failure(Provider.GEMINI).getMessage().contains(KEY));
        assertFalse(failure(Provider.OPENAI).getMessage().contains(KEY));
    }
}
