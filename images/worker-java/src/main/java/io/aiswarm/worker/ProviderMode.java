package io.aiswarm.worker;

import java.util.Locale;

/** The LLM_PROVIDER setting: how a provider is chosen for each task (see docs/protocol.md "Providers"). */
public enum ProviderMode {
    AUTO, GEMINI, OPENAI, OFFLINE;

    /** Parses "auto", "gemini", "openai" or "offline" (any case); null for anything else. */
    static ProviderMode parse(String text) {
        for (ProviderMode mode : values()) {
            if (mode.name().equalsIgnoreCase(text.trim())) {
                return mode;
            }
        }
        return null;
    }

    String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
