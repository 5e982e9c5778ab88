package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ProviderSelectorTest {
    private static final String URL = "http://127.0.0.1:1/v1";

    private static ProviderChoice choose(ProviderMode mode, String geminiKey, String openaiUrl, String openaiKey,
                                         String userKey) {
        return new ProviderSelector(mode, geminiKey, openaiUrl, openaiKey).choose(userKey);
    }

    @Test
    void autoPrefersUserKeyThenServerGeminiKeyThenOpenAiThenOffline() {
        assertEquals(new ProviderChoice(Provider.GEMINI, "user"), choose(ProviderMode.AUTO, "server", URL, "o", "user"));
        assertEquals(new ProviderChoice(Provider.GEMINI, "server"), choose(ProviderMode.AUTO, "server", URL, "o", null));
        assertEquals(new ProviderChoice(Provider.OPENAI, "o"), choose(ProviderMode.AUTO, null, URL, "o", null));
        assertEquals(new ProviderChoice(Provider.OPENAI, null), choose(ProviderMode.AUTO, null, URL, null, null));
        assertEquals(new ProviderChoice(Provider.OFFLINE, null), choose(ProviderMode.AUTO, null, null, "o", null));
    }

    @Test
    void geminiModeUsesUserKeyOverServerKey() {
        assertEquals(new ProviderChoice(Provider.GEMINI, "user"), choose(ProviderMode.GEMINI, "server", URL, null, "user"));
        assertEquals(new ProviderChoice(Provider.GEMINI, "server"), choose(ProviderMode.GEMINI, "server", URL, null, null));
        assertEquals(new ProviderChoice(Provider.GEMINI, null), choose(ProviderMode.GEMINI, null, URL, null, null));
    }

    @Test
    void openAiModeUsesUserKeyOverServerKey() {
        assertEquals(new ProviderChoice(Provider.OPENAI, "user"), choose(ProviderMode.OPENAI, "g", URL, "o", "user"));
        assertEquals(new ProviderChoice(Provider.OPENAI, "o"), choose(ProviderMode.OPENAI, "g", URL, "o", null));
    }

    @Test
    void offlineModeIsAlwaysOffline() {
        assertEquals(new ProviderChoice(Provider.OFFLINE, null), choose(ProviderMode.OFFLINE, "g", URL, "o", "user"));
    }

    @Test
    void defaultProviderIsTheChoiceWithoutUserKey() {
        assertEquals(Provider.OPENAI, new ProviderSelector(ProviderMode.AUTO, null, URL, null).defaultProvider());
        assertEquals(Provider.OFFLINE, new ProviderSelector(ProviderMode.AUTO, null, null, null).defaultProvider());
    }

    @Test
    void choiceNeverPrintsItsKey() {
        assertEquals(false, new ProviderChoice(Provider.GEMINI, "k3y-value").toString().contains("k3y-value"));
    }
}
