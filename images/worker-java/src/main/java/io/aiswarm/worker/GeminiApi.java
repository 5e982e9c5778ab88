package io.aiswarm.worker;

import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.ObjectNode;

/** Gemini generateContent: request body and answer extraction. Pure. */
final class GeminiApi {
    private static final ObjectMapper JSON = new ObjectMapper();

    private GeminiApi() {
    }

    static String path(String model) {
        return "/v1beta/models/" + model + ":generateContent";
    }

    static String requestBody(String query) {
        ObjectNode body = JSON.createObjectNode();
        ObjectNode content = body.putArray("contents").addObject();
        content.put("role", "user");
        content.putArray("parts").addObject().put("text", query);
        return body.toString();
    }

    /** The concatenated text of candidates[0].content.parts[*].text. */
    static String answer(String responseBody) throws LlmException {
        JsonNode parts = readTree(responseBody).path("candidates").path(0).path("content").path("parts");
        StringBuilder answer = new StringBuilder();
        for (JsonNode part : parts) {
            JsonNode text = part.get("text");
            if (text != null && text.isString()) {
                answer.append(text.stringValue());
            }
        }
        if (answer.length() == 0) {
            throw new LlmException(Provider.GEMINI, "no answer in response");
        }
        return answer.toString();
    }

    private static JsonNode readTree(String body) throws LlmException {
        try {
            return JSON.readTree(body);
        } catch (JacksonException e) {
            throw new LlmException(Provider.GEMINI, "response is not JSON");
        }
    }
}
