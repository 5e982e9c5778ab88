package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.ObjectMapper;

class ProviderResponsesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void geminiRequestMatchesTheContract() throws Exception {
        assertEquals("/v1beta/models/gemini-2.5-flash:generateContent", GeminiApi.path("gemini-2.5-flash"));
        assertEquals(JSON.readTree("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"say \\\"hi\\\"\"}]}]}"),
                JSON.readTree(GeminiApi.requestBody("say \"hi\"")));
    }

    @Test
    void geminiAnswerConcatenatesTheFirstCandidatesParts() throws LlmException {
        assertEquals("Hello, world", GeminiApi.answer(FakeLlmServer.geminiAnswer("Hello, ", "world")));
        String withOtherParts = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"inlineData\":{}},"
                + "{\"text\":\"b\"}]}},{\"content\":{\"parts\":[{\"text\":\"second candidate\"}]}}]}";
        assertEquals("ab", GeminiApi.answer(withOtherParts));
    }

    @Test
    void geminiWithoutAnswerIsAnError() {
        for (String body : new String[] {"{}", "{\"candidates\":[]}", "[]", "not json",
            "{\"candidates\":[{\"finishReason\":\"SAFETY\"}]}"}) {
            LlmException e = assertThrows(LlmException.class, () -> GeminiApi.answer(body), body);
            assertTrue(e.getMessage().startsWith("gemini: "), e.getMessage());
        }
    }

    @Test
    void openAiRequestMatchesTheContract() throws Exception {
        assertEquals(JSON.readTree("{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}"),
                JSON.readTree(OpenAiApi.requestBody("llama3.2", "q")));
    }

    @Test
    void openAiAnswerIsTheFirstChoiceContent() throws LlmException {
        assertEquals("forty-two", OpenAiApi.answer(FakeLlmServer.openAiAnswer("forty-two")));
    }

    @Test
    void openAiWithoutAnswerIsAnError() {
        for (String body : new String[] {"{}", "{\"choices\":[]}", "{\"choices\":[{\"message\":{\"content\":null}}]}",
            "<html>", "{\"choices\":[{\"message\":{\"content\":\"\"}}]}"}) {
            LlmException e = assertThrows(LlmException.class, () -> OpenAiApi.answer(body), body);
            assertEquals("openai: " + (body.equals("<html>") ? "response is not JSON" : "no answer in response"),
                    e.getMessage());
        }
    }

    @Test
    void offlineAnswerIsExactlyTheContractText() {
        assertEquals("[offline] No LLM is configured on worker java-vm2-1a2b, so this is not a real answer "
                + "(set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: What is Docker Swarm?",
                OfflineAnswer.forQuery("What is Docker Swarm?", "java-vm2-1a2b"));
        String longQuery = "x".repeat(16000);
        assertTrue(OfflineAnswer.forQuery(longQuery, "w").endsWith("Your question was: " + longQuery));
    }
}
