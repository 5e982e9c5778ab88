package io.aiswarm.worker;

import java.util.Locale;

/** The provider that actually answers a task; its wire name goes in register and in results. */
public enum Provider {
    GEMINI, OPENAI, OFFLINE;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
