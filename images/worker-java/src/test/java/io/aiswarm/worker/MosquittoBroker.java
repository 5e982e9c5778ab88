package io.aiswarm.worker;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A real Mosquitto broker on a free loopback port, started and stopped by this test (by PID). */
final class MosquittoBroker implements AutoCloseable {
    private static final List<String> CANDIDATES = List.of("/usr/sbin/mosquitto", "/usr/bin/mosquitto",
            "/usr/local/sbin/mosquitto");

    private final Path config;
    private final Path store;
    private final int port;
    private Process process;

    private MosquittoBroker(Path config, Path store, int port) {
        this.config = config;
        this.store = store;
        this.port = port;
    }

    /** The mosquitto binary, or null when it is not installed (apt-get install -y mosquitto). */
    static String binary() {
        return CANDIDATES.stream().filter(p -> Files.isExecutable(Path.of(p))).findFirst().orElse(null);
    }

    static MosquittoBroker start() throws IOException, InterruptedException {
        return start(false);
    }

    /**
     * @param persistent keep sessions (subscriptions, queued QoS 1 messages) across a restart, so a
     *                   test client with a persistent session misses nothing while the broker is down
     */
    static MosquittoBroker start(boolean persistent) throws IOException, InterruptedException {
        int port = freePort();
        Path config = Files.createTempFile("mosquitto-test", ".conf");
        String settings = "listener " + port + " 127.0.0.1\nallow_anonymous true\n";
        Path store = null;
        if (persistent) {
            store = Files.createTempDirectory("mosquitto-store");
            // Started as root, mosquitto drops to its own user, which must be able to save here.
            Files.setPosixFilePermissions(store, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            settings += "persistence true\npersistence_location " + store + "/\n";
        }
        Files.writeString(config, settings);
        MosquittoBroker broker = new MosquittoBroker(config, store, port);
        broker.launch();
        return broker;
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    int port() {
        return port;
    }

    String url() {
        return "tcp://127.0.0.1:" + port;
    }

    /** Starts the broker (again) on the same port. */
    void launch() throws IOException, InterruptedException {
        process = new ProcessBuilder(binary(), "-c", config.toString())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        long deadline = System.currentTimeMillis() + 5_000;
        while (System.currentTimeMillis() < deadline) {
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                if (!process.isAlive()) {
                    throw new IOException("mosquitto exited with " + process.exitValue());
                }
                Thread.sleep(50);
            }
        }
        throw new IOException("mosquitto did not listen on port " + port);
    }

    /** Stops this broker process (its own PID only). */
    void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
        }
    }

    @Override
    public void close() throws Exception {
        stop();
        Files.deleteIfExists(config);
        if (store != null) {
            try (var files = Files.list(store)) {
                for (Path file : files.toList()) {
                    Files.deleteIfExists(file);
                }
            }
            Files.deleteIfExists(store);
        }
    }
}
