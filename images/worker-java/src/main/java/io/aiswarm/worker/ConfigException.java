package io.aiswarm.worker;

import java.util.List;

/**
 * Bad or missing environment variables: one {@code NAME <message>} line per problem. A message
 * names the variable, never a secret value.
 */
public final class ConfigException extends Exception {
    private final List<String> problems;

    public ConfigException(String variable, String problem) {
        this(List.of(variable + " " + problem));
    }

    public ConfigException(List<String> problems) {
        super(String.join("; ", problems));
        this.problems = List.copyOf(problems);
    }

    /** One line per bad variable, in the order of proto/worker-settings.json. */
    public List<String> problems() {
        return problems;
    }
}
