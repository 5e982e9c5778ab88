package io.aiswarm.worker;

import io.aiswarm.worker.WorkerSettings.Setting;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tools.jackson.databind.ObjectMapper;

/**
 * Turns the process environment into a {@link Config}, or a {@link ConfigException} listing every
 * bad variable in the table's order. Names, defaults, bounds, allowed values and messages come from
 * {@link WorkerSettings}, generated from proto/worker-settings.json for every worker language; this
 * class only applies them, so its messages read the same as the Go and Python workers'. Pure apart
 * from reading the files named by *_FILE variables and MQTT_CA_FILE, which goes through
 * {@link SecretFiles} so tests can supply their own.
 *
 * <p>Why no configuration library (SmallRye Config, Spring Boot's binder): they bind types and
 * defaults, but not the contract's rules (NAME_FILE winning over NAME, empty counting as unset, a
 * requirement that depends on another variable) nor its shared messages, and they would be the
 * largest dependency of this small image.
 */
public final class ConfigLoader {

    /** docs/protocol.md: a worker id is 1 to 64 characters of [A-Za-z0-9_.-]. */
    static final Pattern WORKER_ID = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
    private static final Pattern NOT_ID_CHAR = Pattern.compile("[^A-Za-z0-9_.-]");
    /** What every worker language reads as an integer: ASCII digits, maybe a minus. */
    private static final Pattern INTEGER_TEXT = Pattern.compile("-?[0-9]+");
    private static final Pattern PLACEHOLDER = Pattern.compile("\\{[a-z_]+\\}");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads a secret file; the loader trims surrounding whitespace (Docker secrets end in a newline). */
    @FunctionalInterface
    public interface SecretFiles {
        String read(Path path) throws IOException;
    }

    private final Map<String, String> env;
    private final SecretFiles files;
    private final Map<String, Object> values = new HashMap<>();
    private final List<String> problems = new ArrayList<>();

    private ConfigLoader(Map<String, String> env, SecretFiles files) {
        this.env = env;
        this.files = files;
    }

    /**
     * @param hostname   the machine's host name (default for NODE_HOSTNAME and part of the default id)
     * @param randomHex  eight random hex digits (32 bits) for the default worker id
     */
    public static Config load(Map<String, String> env, SecretFiles files, String hostname, String randomHex)
            throws ConfigException {
        ConfigLoader loader = new ConfigLoader(env, files);
        loader.read(Map.of("NODE_HOSTNAME", hostname == null ? "" : hostname), null);
        if (!loader.problems.isEmpty()) {
            throw new ConfigException(loader.problems);
        }
        return loader.build(randomHex);
    }

    /** HEALTH_FILE and HEARTBEAT_INTERVAL_MS only, for the healthcheck; a bad value counts as its default. */
    static Map<String, Object> healthSettings(Map<String, String> env) {
        ConfigLoader loader = new ConfigLoader(env, path -> {
            throw new IOException("not read");
        });
        loader.read(Map.of(), Set.of("HEALTH_FILE", "HEARTBEAT_INTERVAL_MS"));
        return loader.values;
    }

    private Config build(String randomHex) {
        String node = text("NODE_HOSTNAME");
        String workerId = text("WORKER_ID");
        String slot = text("TASK_SLOT"); // keeps the default ids of one service's replicas on a VM apart
        String caFile = text("MQTT_CA_FILE");
        return new Config(
                workerId == null ? defaultWorkerId(node, slot == null ? randomHex : slot + "-" + randomHex) : workerId,
                node,
                slot,
                text("MQTT_HOST"),
                (int) number("MQTT_PORT"),
                text("MQTT_USERNAME"),
                text("MQTT_PASSWORD"),
                Boolean.TRUE.equals(values.get("MQTT_TLS")),
                caFile == null ? null : Path.of(caFile),
                text("MQTT_TOPIC_PREFIX"),
                text("MASTER_GRPC_ADDR"),
                text("GRPC_TOKEN"),
                ProviderMode.parse(text("LLM_PROVIDER")), // validated against the table's values
                text("GEMINI_API_KEY"),
                text("GEMINI_BASE_URL"),
                text("GEMINI_MODEL"),
                text("OPENAI_BASE_URL"),
                text("OPENAI_API_KEY"),
                text("OPENAI_MODEL"),
                number("LLM_TIMEOUT_MS"),
                number("SIMULATED_WORK_MS"),
                number("HEARTBEAT_INTERVAL_MS"),
                number("RESULT_RETRY_DEADLINE_MS"),
                number("SHUTDOWN_GRACE_MS"),
                Path.of(text("HEALTH_FILE")),
                LogLevel.parse(text("LOG_LEVEL")));
    }

    private String text(String name) {
        return (String) values.get(name);
    }

    private long number(String name) {
        return (Long) values.get(name);
    }

    /** An unset or blank variable counts as unset (compose files often pass empty strings). */
    private String lookup(String name) {
        String value = env.get(name);
        return value == null || value.isBlank() ? null : value.strip();
    }

    /** Applies the table; {@code computed} gives defaults it cannot hold, {@code only} limits the variables. */
    private void read(Map<String, String> computed, Set<String> only) {
        for (Setting s : WorkerSettings.ALL) {
            if (only != null && !only.contains(s.name())) {
                continue;
            }
            String given = lookup(s.name());
            String raw = given != null ? given : computed.getOrDefault(s.name(), s.defaultValue());
            values.put(s.name(), switch (s.kind()) {
                case "integer" -> integer(s, raw == null ? "" : raw);
                case "boolean" -> bool(s, raw == null ? "" : raw);
                case "choice" -> choice(s, raw == null ? "" : raw);
                case "file" -> file(s, raw);
                case "secret" -> secret(s);
                default -> string(s, raw);
            });
        }
    }

    private long integer(Setting s, String raw) {
        try {
            if (INTEGER_TEXT.matcher(raw).matches()) {
                long value = Long.parseLong(raw);
                if (value >= s.min() && value <= s.max()) {
                    return value;
                }
            }
        } catch (NumberFormatException e) {
            // too long for a long: reported below
        }
        fail(s, "integer", raw);
        return Long.parseLong(s.defaultValue());
    }

    private boolean bool(Setting s, String raw) {
        String lowered = raw.toLowerCase(Locale.ROOT);
        if (!WorkerSettings.TRUE_WORDS.contains(lowered) && !WorkerSettings.FALSE_WORDS.contains(lowered)) {
            fail(s, "boolean", raw);
        }
        return WorkerSettings.TRUE_WORDS.contains(lowered);
    }

    private String choice(Setting s, String raw) {
        String value = s.ignoreCase() ? raw.toLowerCase(Locale.ROOT) : raw;
        if (s.values().contains(value)) {
            return value;
        }
        fail(s, "choice", raw);
        return s.defaultValue();
    }

    private String file(Setting s, String raw) {
        if (raw != null) {
            try {
                files.read(Path.of(raw));
            } catch (IOException | RuntimeException e) {
                fail(s, "file", raw);
            }
        }
        return raw;
    }

    private String string(Setting s, String raw) {
        String value = raw;
        if (value != null && s.pattern() != null && !Pattern.compile(s.pattern()).matcher(value).matches()) {
            fail(s, "pattern", value);
        }
        if (value != null && s.trimTrailingSlash()) {
            value = value.replaceAll("/+$", "");
        }
        if ((value == null || value.isEmpty()) && s.required()) {
            fail(s, "required", "");
        } else if ((value == null || value.isEmpty()) && s.requiredWhenName() != null
                && s.requiredWhenValue().equals(values.get(s.requiredWhenName()))) {
            fail(s, "required_when", "");
        }
        return value == null || value.isEmpty() ? null : value;
    }

    /** NAME_FILE wins over NAME; the value itself never appears in an error. */
    private String secret(Setting s) {
        Setting fileVariable = new Setting(s.name() + "_FILE", "file", null, 0, 0, List.of(), false, null, null,
                false, false, null, null);
        String path = lookup(fileVariable.name());
        if (path == null) {
            String value = lookup(s.name());
            if (value == null && s.required()) {
                fail(s, "required_secret", "");
            }
            return value;
        }
        try {
            String value = files.read(Path.of(path)).strip();
            if (value.isEmpty()) {
                fail(fileVariable, "file_empty", path);
                return null;
            }
            return value;
        } catch (IOException | RuntimeException e) {
            fail(fileVariable, "file_unreadable", path);
            return null;
        }
    }

    /** Adds {@code NAME <message>}: the table's text for kind, {value} as a JSON string. */
    private void fail(Setting s, String kind, String value) {
        Map<String, String> fill = new HashMap<>();
        fill.put("{value}", jsonString(value));
        fill.put("{min}", Long.toString(s.min()));
        fill.put("{max}", Long.toString(s.max()));
        fill.put("{values}", String.join(", ", s.values()));
        fill.put("{rule}", s.rule() == null ? "" : s.rule());
        fill.put("{name}", s.name());
        fill.put("{when_name}", s.requiredWhenName() == null ? "" : s.requiredWhenName());
        fill.put("{when_value}", s.requiredWhenValue() == null ? "" : s.requiredWhenValue());
        Matcher m = PLACEHOLDER.matcher(WorkerSettings.MESSAGES.get(kind));
        problems.add(s.name() + " " + m.replaceAll(r -> Matcher.quoteReplacement(fill.getOrDefault(r.group(), r.group()))));
    }

    private static String jsonString(String value) {
        return JSON.writeValueAsString(value); // Jackson 3: unchecked, and a string always serializes
    }

    /**
     * "java-<node>-<suffix>" (node: NODE_HOSTNAME, else the host name; suffix: "[<task slot>-]<8 hex>"),
     * cleaned and cut so the id stays valid.
     */
    static String defaultWorkerId(String hostname, String idSuffix) {
        String prefix = Config.LANGUAGE + "-";
        String suffix = "-" + idSuffix;
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
}
