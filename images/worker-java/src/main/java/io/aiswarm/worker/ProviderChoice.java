package io.aiswarm.worker;

/** The provider for one task and the key to call it with (null when none). */
public record ProviderChoice(Provider provider, String apiKey) {

    /** Never show the key. */
    @Override
    public String toString() {
        return "ProviderChoice[" + provider.wireName() + ", api_key=" + (apiKey == null ? "unset" : "set") + "]";
    }
}
