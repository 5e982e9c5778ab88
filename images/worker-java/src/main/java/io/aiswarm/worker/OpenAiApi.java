package io.aiswarm.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;

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
        } catch (IOException e) {
            throw new LlmException(Provider.OPENAI, "response is not JSON");
        }
        JsonNode content = root.path("choices").path(0).path("message").path("content");
        if (!content.isTextual() || content.textValue().isEmpty()) {
            throw new LlmException(Provider.OPENAI, "no answer in response");
        }
        return content.textValue();
    }
}
