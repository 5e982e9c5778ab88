package io.aiswarm.worker;

/** A bad or missing environment variable. The message names the variable, never a secret value. */
public final class ConfigException extends Exception {
    private final String variable;

    public ConfigException(String variable, String problem) {
        super(variable + " " + problem);
        this.variable = variable;
    }

    public String variable() {
        return variable;
    }
}
