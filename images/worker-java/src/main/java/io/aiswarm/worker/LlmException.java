package io.aiswarm.worker;

/**
 * A provider call that gave no answer. The message is what goes in the result's error field:
 * it names the provider and the cause (e.g. "gemini: HTTP 429"), never a key.
 */
public final class LlmException extends Exception {
    public LlmException(Provider provider, String cause) {
        super(provider.wireName() + ": " + cause);
    }
}
