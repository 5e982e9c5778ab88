package io.aiswarm.worker;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * proto/mqtt/payloads.schema.json (on the class path, copied there by Maven), compiled with
 * networknt's json-schema-validator: one validator per message ($defs entry of type object),
 * after what the schema cannot say: the byte limit and JSON (UTF-8). Errors name the rule, the
 * fields and the schema keywords, never the content.
 */
public final class PayloadSchema {
    static final String RESOURCE = "/mqtt/payloads.schema.json";
    private static final String MAX_BYTES_KEYWORD = "x-max-payload-bytes";
    private static final JsonMapper JSON =
            JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

    private final int maxBytes;
    private final Map<String, Schema> defs = new LinkedHashMap<>();

    private PayloadSchema(String schemaText) {
        JsonNode root = JSON.readTree(schemaText);
        maxBytes = root.get(MAX_BYTES_KEYWORD).intValue();
        String id = root.get("$id").stringValue();
        // The registry knows the schema by its $id, so nothing is ever fetched.
        SchemaRegistry registry = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12,
                builder -> builder.schemas(Map.of(id, schemaText)));
        root.get("$defs").properties().stream().filter(def -> def.getValue().path("type").asString("").equals("object"))
                .forEach(def -> defs.put(def.getKey(), registry.getSchema(SchemaLocation.of(id + "#/$defs/" + def.getKey()))));
    }

    /** The schema in the jar, read once; it is checked by the tests, so a failure here is a build defect. */
    private static final class Bundled {
        static final PayloadSchema SCHEMA;

        static {
            try (InputStream in = PayloadSchema.class.getResourceAsStream(RESOURCE)) {
                SCHEMA = new PayloadSchema(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + RESOURCE, e);
            }
        }
    }

    /** The schema built into the jar (compiled once, on first use). */
    static PayloadSchema bundled() {
        return Bundled.SCHEMA;
    }

    int maxBytes() {
        return maxBytes;
    }

    /** The payload as a {@code messageType} message ("task", "status", …: a $defs entry). */
    JsonNode validate(String messageType, byte[] payload) throws InvalidPayloadException {
        if (payload.length > maxBytes) {
            throw new InvalidPayloadException(InvalidPayloadException.Rule.TOO_LARGE,
                    "payload is " + payload.length + " bytes, more than " + maxBytes / 1024 + " KiB", List.of());
        }
        Schema schema = defs.get(messageType);
        if (schema == null) {
            throw new IllegalArgumentException("no message type " + messageType + " in the schema");
        }
        JsonNode root;
        try {
            root = JSON.readTree(payload);
        } catch (JacksonException e) {
            root = null;
        }
        if (root == null || root.isMissingNode()) {
            throw new InvalidPayloadException(InvalidPayloadException.Rule.NOT_JSON, "payload is not valid JSON", List.of());
        }
        List<Error> errors = schema.validate(root);
        if (errors.isEmpty()) {
            return root;
        }
        List<InvalidPayloadException.Problem> problems = problems(errors);
        if (problems == null) {
            throw new InvalidPayloadException(InvalidPayloadException.Rule.NOT_OBJECT, "payload is not a JSON object", List.of());
        }
        String fields = problems.stream().map(p -> p.field() + " (" + p.keyword() + ")").collect(Collectors.joining(", "));
        throw new InvalidPayloadException(InvalidPayloadException.Rule.FIELD, "invalid field(s): " + fields, problems);
    }

    /** The field of each error (the missing one for `required`); null when the payload is not an object. */
    private static List<InvalidPayloadException.Problem> problems(List<Error> errors) {
        Set<InvalidPayloadException.Problem> problems = new LinkedHashSet<>();
        for (Error error : errors) {
            if (error.getInstanceLocation().getNameCount() > 0) {
                problems.add(new InvalidPayloadException.Problem(error.getInstanceLocation().getName(0), error.getKeyword()));
            } else if ("required".equals(error.getKeyword())) {
                problems.add(new InvalidPayloadException.Problem(error.getProperty(), "required"));
            } else if ("type".equals(error.getKeyword())) {
                return null;
            }
        }
        return new ArrayList<>(problems);
    }
}
