package io.aiswarm.worker;

/** The answer when no LLM is configured: the contract's text, word for word (docs/protocol.md, Providers). */
final class OfflineAnswer {
    private OfflineAnswer() {
    }

    static String forQuery(String query, String workerId) {
        return "[offline] No LLM is configured on worker " + workerId + ", so this is not a real answer "
                + "(set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: " + query;
    }
}
