package io.aiswarm.worker;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.SocketFactory;
import org.eclipse.paho.client.mqttv3.MqttException;
import sun.misc.Signal;

/**
 * Entry point: {@code java -jar worker-java.jar} runs the worker, {@code --healthcheck} runs
 * the HEALTHCHECK probe. Exit codes: 0 after SIGTERM, 2 on bad configuration, 1 on any other
 * start-up failure.
 */
public final class Main {
    static final int EXIT_BAD_CONFIG = 2;

    private Main() {
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length > 0 && args[0].equals("--healthcheck")) {
            Healthcheck.main(args);
            return;
        }
        Config config = loadConfigOrExit();
        Log log = new Log(config.workerId(), config.logLevel());
        ProviderSelector selector = ProviderSelector.from(config);
        log.info("starting worker id=" + config.workerId() + " language=" + Config.LANGUAGE
                + " node=" + config.nodeHostname() + " provider_mode=" + config.llmProvider().wireName()
                + " default_provider=" + selector.defaultProvider().wireName()
                + " mqtt=" + config.mqttHost() + ":" + config.mqttPort() + " master=" + config.masterGrpcAddr());
        warnAboutUnusableProvider(config, log);

        MasterClient master = new MasterClient(config.masterGrpcAddr(), config.grpcToken());
        TaskProcessor processor = new TaskProcessor(config, selector, new LlmClient(config), master, log,
                System::currentTimeMillis, Thread::sleep);
        Worker worker = new Worker(config, log, selector.defaultProvider(), processor, master,
                System::currentTimeMillis);
        MqttLink mqtt = connectOrExit(config, worker, log);

        handleTermination(worker, log);
        worker.start(mqtt);
        new CountDownLatch(1).await(); // the worker runs on its own threads until SIGTERM
    }

    private static Config loadConfigOrExit() {
        try {
            return ConfigLoader.load(System.getenv(), path -> Files.readString(path, StandardCharsets.UTF_8),
                    hostname(), String.format(Locale.ROOT, "%08x", new SecureRandom().nextInt()));
        } catch (ConfigException e) {
            exitBadConfig(e);
            throw new IllegalStateException("unreachable");
        }
    }

    private static MqttLink connectOrExit(Config config, Worker worker, Log log) {
        try {
            SocketFactory tls = config.mqttTls() ? MqttTls.socketFactory(config.mqttCaFile()) : null;
            return new MqttLink(config, worker.topics(), worker.payloads(), log, tls, worker);
        } catch (ConfigException e) {
            exitBadConfig(e);
        } catch (MqttException e) {
            log.error("cannot create the MQTT client: " + MqttLink.describe(e));
            System.exit(1);
        }
        throw new IllegalStateException("unreachable");
    }

    /** One line per problem, as every worker language prints them (docs/protocol.md), then exit 2. */
    private static void exitBadConfig(ConfigException e) {
        for (String problem : e.problems()) {
            System.err.println("config error: " + problem);
        }
        System.exit(EXIT_BAD_CONFIG);
    }

    /** SIGTERM (docker stop) and SIGINT (Ctrl-C) run the graceful sequence, then exit 0. */
    private static void handleTermination(Worker worker, Log log) {
        AtomicBoolean once = new AtomicBoolean();
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), signal -> {
                if (once.compareAndSet(false, true)) {
                    log.info("SIG" + name + " received: stopping");
                    worker.shutdown();
                    System.exit(0);
                }
            });
        }
    }

    private static void warnAboutUnusableProvider(Config config, Log log) {
        if (config.llmProvider() == ProviderMode.OPENAI && config.openaiBaseUrl() == null) {
            log.warn("LLM_PROVIDER=openai but OPENAI_BASE_URL is not set: every task will get an error result");
        }
        if (config.llmProvider() == ProviderMode.GEMINI && config.geminiApiKey() == null) {
            log.warn("LLM_PROVIDER=gemini but no GEMINI_API_KEY: only tasks with a user key can be answered");
        }
    }

    /** The kernel's host name, without a DNS lookup (which can hang in a badly set up container). */
    static String hostname() {
        try {
            String name = Files.readString(Path.of("/proc/sys/kernel/hostname")).trim();
            if (!name.isEmpty()) {
                return name;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: fall through
        }
        String fromEnv = System.getenv("HOSTNAME");
        return fromEnv == null || fromEnv.isBlank() ? "localhost" : fromEnv.trim();
    }
}
