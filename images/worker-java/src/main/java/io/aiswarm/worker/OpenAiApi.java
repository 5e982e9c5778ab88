package io.aiswarm.worker;

import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.ObjectNode;

/** OpenAI-compatible chat/completions: request body and answer extraction. Pure. */
final class OpenAiApi {
    private static final ObjectMapper JSON = new ObjectMapper();

    private OpenAiApi() {
    }

    static final String PATH = "/chat/completions";

    static String requestBody(String model, String query) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model);
        ObjectNode message = body.putArray("messages").addObject();
        message.put("role", "user");
        message.put("content", query);
        return body.toString();
    }

    /** choices[0].message.content. */
    static String answer(String responseBody) throws LlmException {
        JsonNode root;
        try {
            root = JSON.readTree(responseBody);
        } catch (JacksonException e) {
            throw new LlmException(Provider.OPENAI, "response is not JSON");
        }
        JsonNode content = root.path("choices").path(0).path("message").path("content");
        if (!content.isString() || content.stringValue().isEmpty()) {
            throw new LlmException(Provider.OPENAI, "no answer in response");
        }
        return content.stringValue();
    }
}
