package io.aiswarm.worker;

import java.util.List;

/** A received payload that breaks the contract; the message says why, never what it contained. */
public final class InvalidPayloadException extends Exception {
    /** Why: the stage that refused it (the shared test vectors name it in lower case, "-" for "_"). */
    public enum Rule { TOO_LARGE, NOT_JSON, NOT_OBJECT, FIELD }

    /** A top-level field the schema refuses, and the schema keyword that refuses it. */
    public record Problem(String field, String keyword) {
    }

    private final Rule rule;
    private final List<Problem> problems;

    public InvalidPayloadException(Rule rule, String reason, List<Problem> problems) {
        super(reason);
        this.rule = rule;
        this.problems = List.copyOf(problems);
    }

    public Rule rule() {
        return rule;
    }

    /** For {@link Rule#FIELD}: the fields and keywords; empty otherwise. */
    public List<Problem> problems() {
        return problems;
    }
}
