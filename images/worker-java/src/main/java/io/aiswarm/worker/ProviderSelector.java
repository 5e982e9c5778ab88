package io.aiswarm.worker;

/** docs/protocol.md "Providers": which provider answers a task. Pure. */
public final class ProviderSelector {
    private final ProviderMode mode;
    private final String serverGeminiKey;
    private final String openaiBaseUrl;
    private final String openaiKey;

    public ProviderSelector(ProviderMode mode, String serverGeminiKey, String openaiBaseUrl, String openaiKey) {
        this.mode = mode;
        this.serverGeminiKey = serverGeminiKey;
        this.openaiBaseUrl = openaiBaseUrl;
        this.openaiKey = openaiKey;
    }

    public static ProviderSelector from(Config config) {
        return new ProviderSelector(config.llmProvider(), config.geminiApiKey(), config.openaiBaseUrl(),
                config.openaiApiKey());
    }

    /** @param userKey the per-query key fetched from the master, or null */
    public ProviderChoice choose(String userKey) {
        return switch (mode) {
            case OFFLINE -> new ProviderChoice(Provider.OFFLINE, null);
            case GEMINI -> new ProviderChoice(Provider.GEMINI, firstSet(userKey, serverGeminiKey));
            case OPENAI -> new ProviderChoice(Provider.OPENAI, firstSet(userKey, openaiKey));
            case AUTO -> chooseAuto(userKey);
        };
    }

    private ProviderChoice chooseAuto(String userKey) {
        if (userKey != null) {
            return new ProviderChoice(Provider.GEMINI, userKey);
        }
        if (serverGeminiKey != null) {
            return new ProviderChoice(Provider.GEMINI, serverGeminiKey);
        }
        if (openaiBaseUrl != null) {
            return new ProviderChoice(Provider.OPENAI, openaiKey);
        }
        return new ProviderChoice(Provider.OFFLINE, null);
    }

    /** The provider a task without a user key gets; announced in register. */
    public Provider defaultProvider() {
        return choose(null).provider();
    }

    private static String firstSet(String preferred, String fallback) {
        return preferred != null ? preferred : fallback;
    }
}
