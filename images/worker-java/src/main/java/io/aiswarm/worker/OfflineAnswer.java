package io.aiswarm.worker;

/** The answer when no LLM is configured: it says so plainly and starts with "[offline]". */
final class OfflineAnswer {
    private OfflineAnswer() {
    }

    static String forQuery(String query, String workerId) {
        int chars = query.codePointCount(0, query.length());
        return "[offline] No LLM is configured for this worker, so this is not a real answer. "
                + "Worker " + workerId + " (java) received your question (" + chars + " characters) and "
                + "processed it. Set GEMINI_API_KEY or OPENAI_BASE_URL to get real answers.";
    }
}
