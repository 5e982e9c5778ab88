package io.aiswarm.worker;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Turns the process environment into a {@link Config}, or a {@link ConfigException} naming the
 * first bad variable. Pure apart from reading the files named by *_FILE variables, which goes
 * through {@link SecretFiles} so tests can supply their own.
 */
public final class ConfigLoader {

    /** docs/protocol.md: a worker id is 1 to 64 characters of [A-Za-z0-9_.-]. */
    static final Pattern WORKER_ID = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
    private static final Pattern NOT_ID_CHAR = Pattern.compile("[^A-Za-z0-9_.-]");

    /** Reads a secret file; the loader trims surrounding whitespace (Docker secrets end in a newline). */
    @FunctionalInterface
    public interface SecretFiles {
        String read(Path path) throws IOException;
    }

    private final Map<String, String> env;
    private final SecretFiles files;

    private ConfigLoader(Map<String, String> env, SecretFiles files) {
        this.env = env;
        this.files = files;
    }

    /**
     * @param hostname   the machine's host name (default for NODE_HOSTNAME and part of the default id)
     * @param randomHex4 four random hex digits for the default worker id
     */
    public static Config load(Map<String, String> env, SecretFiles files, String hostname, String randomHex4)
            throws ConfigException {
        return new ConfigLoader(env, files).build(hostname, randomHex4);
    }

    private Config build(String hostname, String randomHex4) throws ConfigException {
        String node = text("NODE_HOSTNAME", hostname);
        String workerId = workerId(node, randomHex4);
        String token = secret("GRPC_TOKEN");
        if (token == null) {
            throw new ConfigException("GRPC_TOKEN", "is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)");
        }
        boolean tls = bool("MQTT_TLS", false);
        String caFile = text("MQTT_CA_FILE", null);
        return new Config(
                workerId,
                node,
                text("MQTT_HOST", "mosquitto"),
                port("MQTT_PORT", 1883),
                text("MQTT_USERNAME", null),
                secret("MQTT_PASSWORD"),
                tls,
                caFile == null ? null : Path.of(caFile),
                topicPrefix(),
                hostPort("MASTER_GRPC_ADDR", "master:50051"),
                token,
                providerMode(),
                secret("GEMINI_API_KEY"),
                httpUrl("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"),
                modelName("GEMINI_MODEL", "gemini-2.5-flash"),
                httpUrl("OPENAI_BASE_URL", null),
                secret("OPENAI_API_KEY"),
                modelName("OPENAI_MODEL", "llama3.2"),
                millis("LLM_TIMEOUT_MS", 30_000, 1),
                millis("SIMULATED_WORK_MS", 10_000, 0),
                millis("HEARTBEAT_INTERVAL_MS", 2_000, 1),
                millis("RESULT_RETRY_DEADLINE_MS", 120_000, 0),
                millis("SHUTDOWN_GRACE_MS", 20_000, 0),
                Path.of(text("HEALTH_FILE", "/tmp/worker.health")),
                logLevel());
    }

    /** An unset or blank variable counts as unset (compose files often pass empty strings). */
    private String text(String name, String fallback) {
        String value = env.get(name);
        return value == null || value.isBlank() ? fallback : value.trim();
    }

    /** NAME_FILE wins over NAME; the value itself never appears in an error. */
    private String secret(String name) throws ConfigException {
        String fileName = name + "_FILE";
        String path = text(fileName, null);
        if (path != null) {
            try {
                String value = files.read(Path.of(path)).strip();
                if (value.isEmpty()) {
                    throw new ConfigException(fileName, "names an empty file: " + path);
                }
                return value;
            } catch (IOException e) {
                throw new ConfigException(fileName, "names a file that cannot be read: " + path);
            }
        }
        String value = env.get(name);
        return value == null || value.isBlank() ? null : value.strip();
    }

    private String workerId(String node, String randomHex4) throws ConfigException {
        String given = text("WORKER_ID", null);
        if (given == null) {
            return defaultWorkerId(node, randomHex4);
        }
        if (!WORKER_ID.matcher(given).matches()) {
            throw new ConfigException("WORKER_ID", "must be 1 to 64 characters of [A-Za-z0-9_.-], got \"" + given + "\"");
        }
        return given;
    }

    /** "java-<node>-<4 hex>" (node: NODE_HOSTNAME, else the host name), cleaned and cut so the id stays valid. */
    static String defaultWorkerId(String hostname, String randomHex4) {
        String prefix = Config.LANGUAGE + "-";
        String suffix = "-" + randomHex4;
        String host = NOT_ID_CHAR.matcher(hostname == null ? "" : hostname).replaceAll("-");
        if (host.isEmpty()) {
            host = "host";
        }
        int room = 64 - prefix.length() - suffix.length();
        if (host.length() > room) {
            host = host.substring(0, room);
        }
        return prefix + host + suffix;
    }

    private String topicPrefix() throws ConfigException {
        String prefix = text("MQTT_TOPIC_PREFIX", "ai-system");
        if (prefix.contains("+") || prefix.contains("#") || prefix.startsWith("/") || prefix.endsWith("/")) {
            throw new ConfigException("MQTT_TOPIC_PREFIX",
                    "must not contain MQTT wildcards (+, #) nor start or end with '/', got \"" + prefix + "\"");
        }
        return prefix;
    }

    private ProviderMode providerMode() throws ConfigException {
        return oneOf("LLM_PROVIDER", "auto", ProviderMode::parse, "auto, gemini, openai or offline");
    }

    private LogLevel logLevel() throws ConfigException {
        return oneOf("LOG_LEVEL", "info", LogLevel::parse, "debug, info, warn or error");
    }

    /** A variable naming one of a few values; {@code parse} returns null for anything else. */
    private <T> T oneOf(String name, String fallback, Function<String, T> parse, String allowed)
            throws ConfigException {
        String value = text(name, fallback);
        T parsed = parse.apply(value);
        if (parsed == null) {
            throw new ConfigException(name, "must be " + allowed + ", got \"" + value + "\"");
        }
        return parsed;
    }

    private boolean bool(String name, boolean fallback) throws ConfigException {
        String value = text(name, null);
        if (value == null) {
            return fallback;
        }
        switch (value.toLowerCase(Locale.ROOT)) {
            case "true", "1", "yes":
                return true;
            case "false", "0", "no":
                return false;
            default:
                throw new ConfigException(name, "must be true or false, got \"" + value + "\"");
        }
    }

    private long millis(String name, long fallback, long minimum) throws ConfigException {
        String value = text(name, null);
        if (value == null) {
            return fallback;
        }
        long parsed;
        try {
            parsed = Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new ConfigException(name, "must be a whole number of milliseconds, got \"" + value + "\"");
        }
        if (parsed < minimum) {
            throw new ConfigException(name, "must be at least " + minimum + ", got " + parsed);
        }
        return parsed;
    }

    private int port(String name, int fallback) throws ConfigException {
        String value = text(name, null);
        return value == null ? fallback : parsePort(name, value);
    }

    private static int parsePort(String name, String value) throws ConfigException {
        try {
            int port = Integer.parseInt(value);
            if (port >= 1 && port <= 65535) {
                return port;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new ConfigException(name, "must be a port number from 1 to 65535, got \"" + value + "\"");
    }

    /** host:port, as grpc expects it (an IPv6 host in brackets). */
    private String hostPort(String name, String fallback) throws ConfigException {
        String value = text(name, fallback);
        int colon = value.lastIndexOf(':');
        if (colon <= 0 || colon == value.length() - 1) {
            throw new ConfigException(name, "must be host:port, got \"" + value + "\"");
        }
        parsePort(name, value.substring(colon + 1));
        return value;
    }

    /** An http(s) URL without its trailing slash, so paths can be appended. */
    private String httpUrl(String name, String fallback) throws ConfigException {
        String value = text(name, fallback);
        if (value == null) {
            return null;
        }
        try {
            URI uri = new URI(value);
            String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
            if ((scheme.equals("http") || scheme.equals("https")) && uri.getHost() != null) {
                return value.replaceAll("/+$", "");
            }
        } catch (URISyntaxException e) {
            // reported below
        }
        throw new ConfigException(name, "must be an http:// or https:// URL, got \"" + value + "\"");
    }

    private String modelName(String name, String fallback) throws ConfigException {
        String value = text(name, fallback);
        if (value.chars().anyMatch(c -> Character.isWhitespace(c) || c == '?' || c == '#')) {
            throw new ConfigException(name, "must be a model name without spaces, '?' or '#', got \"" + value + "\"");
        }
        return value;
    }
}
