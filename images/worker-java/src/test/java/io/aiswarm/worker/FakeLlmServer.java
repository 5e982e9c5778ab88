package io.aiswarm.worker;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/**
 * A fake LLM HTTP server on 127.0.0.1 (Gemini or OpenAI-compatible: it answers whatever it is
 * told for every path) that records each request, so tests run the worker's real HTTP code.
 */
final class FakeLlmServer implements AutoCloseable {
    /** One request as the server saw it. Header names are lower case. */
    record Request(String method, String path, Map<String, List<String>> headers, String body) {
        String header(String name) {
            List<String> values = headers.get(name);
            return values == null || values.isEmpty() ? null : values.get(0);
        }
    }

    final List<Request> requests = new CopyOnWriteArrayList<>();
    private final HttpServer server;
    private volatile int status = 200;
    private volatile String body = "{}";
    private volatile long delayMs;

    FakeLlmServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "fake-llm");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/", this::handle);
        server.start();
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    FakeLlmServer respond(int status, String body) {
        this.status = status;
        this.body = body;
        return this;
    }

    /** Wait this long before answering (longer than LLM_TIMEOUT_MS = a server that never answers). */
    FakeLlmServer delay(long ms) {
        this.delayMs = ms;
        return this;
    }

    static String geminiAnswer(String... parts) {
        StringBuilder json = new StringBuilder("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
        for (int i = 0; i < parts.length; i++) {
            json.append(i == 0 ? "" : ",").append("{\"text\":\"").append(parts[i]).append("\"}");
        }
        return json.append("]}}]}").toString();
    }

    static String openAiAnswer(String content) {
        return "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" + content + "\"}}]}";
    }

    private void handle(HttpExchange exchange) throws IOException {
        String requestBody = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        Map<String, List<String>> headers = new java.util.HashMap<>();
        exchange.getRequestHeaders().forEach((name, values) -> headers.put(name.toLowerCase(), values));
        requests.add(new Request(exchange.getRequestMethod(), exchange.getRequestURI().getPath(), headers, requestBody));
        try {
            if (delayMs > 0) {
                Thread.sleep(delayMs);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        } catch (IOException clientGone) {
            // the worker gave up (timeout test): fine
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
