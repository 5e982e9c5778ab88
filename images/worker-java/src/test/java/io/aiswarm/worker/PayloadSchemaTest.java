package io.aiswarm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.ObjectNode;

/** The shared test vectors (proto/mqtt/vectors), and what only this worker does with a task. */
class PayloadSchemaTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path PROTO_MQTT = Path.of("..", "..", "proto", "mqtt");

    @TestFactory
    Stream<DynamicTest> sharedVectors() throws Exception {
        JsonNode file = JSON.readTree(PROTO_MQTT.resolve("vectors").resolve("payloads.json").toFile());
        return file.get("groups").valueStream().flatMap(group -> group.get("cases").valueStream().map(c ->
                DynamicTest.dynamicTest(group.get("type").stringValue() + ": " + c.get("name").stringValue(),
                        () -> check(group.get("type").stringValue(), vectorBytes(group, c), c))));
    }

    private static void check(String type, byte[] payload, JsonNode c) {
        if (c.get("valid").booleanValue()) {
            try {
                PayloadSchema.bundled().validate(type, payload);
            } catch (InvalidPayloadException e) {
                throw new AssertionError("refused: " + e.getMessage(), e);
            }
            return;
        }
        InvalidPayloadException e = assertThrows(InvalidPayloadException.class,
                () -> PayloadSchema.bundled().validate(type, payload));
        assertEquals(c.get("rule").stringValue(), e.rule().name().toLowerCase(Locale.ROOT).replace('_', '-'), e.getMessage());
        if (e.rule() != InvalidPayloadException.Rule.FIELD) {
            return;
        }
        assertEquals(List.of(c.get("field").stringValue()),
                e.problems().stream().map(InvalidPayloadException.Problem::field).distinct().toList(), e.getMessage());
        assertTrue(e.problems().stream().anyMatch(p -> p.keyword().equals(c.get("keyword").stringValue())), e.getMessage());
    }

    /** The bytes a case stands for (proto/mqtt/vectors/format.schema.json says how). */
    private static byte[] vectorBytes(JsonNode group, JsonNode c) {
        if (c.has("text")) {
            return c.get("text").stringValue().repeat(c.path("repeat").asInt(1)).getBytes(StandardCharsets.UTF_8);
        }
        if (c.has("hex")) {
            return HexFormat.of().parseHex(c.get("hex").stringValue());
        }
        ObjectNode payload = ((ObjectNode) group.get("base")).deepCopy();
        if (c.has("set")) {
            payload.setAll((ObjectNode) c.get("set"));
        }
        c.path("unset").valueStream().forEach(name -> payload.remove(name.stringValue()));
        if (c.has("fill")) {
            JsonNode fill = c.get("fill");
            payload.put(fill.get("field").stringValue(), fill.get("unit").stringValue().repeat(fill.get("times").intValue()));
        }
        byte[] raw = payload.toString().getBytes(StandardCharsets.UTF_8);
        int padTo = c.path("pad_to_bytes").asInt(raw.length);
        assertTrue(raw.length <= padTo, "vector payload already has " + raw.length + " bytes");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(raw);
        out.writeBytes(" ".repeat(padTo - raw.length).getBytes(StandardCharsets.UTF_8));
        return out.toByteArray();
    }

    @Test
    void theClassPathHoldsTheRepositorysSchema() throws Exception {
        byte[] original = Files.readAllBytes(PROTO_MQTT.resolve("payloads.schema.json"));
        try (var in = PayloadSchema.class.getResourceAsStream(PayloadSchema.RESOURCE)) {
            assertEquals(new String(original, StandardCharsets.UTF_8), new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        assertEquals(64 * 1024, PayloadSchema.bundled().maxBytes());
    }

    @Test
    void aTaskReadsIntoTypedFields() throws InvalidPayloadException {
        TaskMessage task = TaskParser.parse(("{\"v\":1,\"type\":\"task\",\"task_id\":\"q_01\",\"query\":\"Why?\","
                + "\"lease_ms\":3e4,\"has_credential\":true,\"ts\":1764355200100}").getBytes(StandardCharsets.UTF_8));
        assertEquals(new TaskMessage("q_01", "Why?", 30000, true, 1764355200100L), task);
    }

    @Test
    void reasonNeverQuotesTheContent() {
        String secretish = "{\"v\":1,\"type\":\"SECRET-CONTENT\",\"task_id\":\"q\",\"query\":\"SECRET query\"}";
        InvalidPayloadException e = assertThrows(InvalidPayloadException.class,
                () -> TaskParser.parse(secretish.getBytes(StandardCharsets.UTF_8)));
        assertTrue(e.getMessage().startsWith("invalid field(s): "), e.getMessage());
        assertFalse(e.getMessage().contains("SECRET"), e.getMessage());
    }
}
