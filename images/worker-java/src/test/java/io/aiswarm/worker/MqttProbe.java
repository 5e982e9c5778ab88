package io.aiswarm.worker;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.Predicate;
import org.eclipse.paho.client.mqttv3.MqttClient;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/** A test MQTT client that records every message under a topic filter and can publish. */
final class MqttProbe implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One received message; json is null when the payload is not JSON. */
    record Received(String topic, String payload, JsonNode json, long atMs) {
    }

    private final MqttClient client;
    private final List<Received> received = new ArrayList<>();

    MqttProbe(String brokerUrl, String filter) throws Exception {
        this(brokerUrl, filter, false);
    }

    /** @param persistentSession keep the subscription and queued messages on a persistent broker */
    MqttProbe(String brokerUrl, String filter, boolean persistentSession) throws Exception {
        client = new MqttClient(brokerUrl, "probe-" + UUID.randomUUID().toString().substring(0, 8),
                new MemoryPersistence());
        MqttConnectOptions options = new MqttConnectOptions();
        options.setCleanSession(!persistentSession);
        options.setAutomaticReconnect(true);
        options.setMaxReconnectDelay(500);
        client.setCallback(new org.eclipse.paho.client.mqttv3.MqttCallbackExtended() {
            @Override
            public void connectComplete(boolean reconnect, String serverURI) {
                if (reconnect) {
                    new Thread(() -> resubscribe(filter)).start();
                }
            }

            @Override
            public void connectionLost(Throwable cause) {
            }

            @Override
            public void messageArrived(String topic, MqttMessage message) {
                record(topic, message.getPayload());
            }

            @Override
            public void deliveryComplete(org.eclipse.paho.client.mqttv3.IMqttDeliveryToken token) {
            }
        });
        client.connect(options);
        client.subscribe(filter, 1);
    }

    private void resubscribe(String filter) {
        try {
            client.subscribe(filter, 1);
        } catch (Exception e) {
            // the test will time out waiting and say what it missed
        }
    }

    private void record(String topic, byte[] payload) {
        String text = new String(payload, StandardCharsets.UTF_8);
        JsonNode json;
        try {
            json = JSON.readTree(text);
        } catch (Exception e) {
            json = null;
        }
        synchronized (received) {
            received.add(new Received(topic, text, json, System.currentTimeMillis()));
            received.notifyAll();
        }
    }

    void publish(String topic, String payload) throws Exception {
        client.publish(topic, payload.getBytes(StandardCharsets.UTF_8), 1, false);
    }

    /** Waits for the first message after index {@code from} that matches. */
    Received await(String what, long timeoutMs, Predicate<Received> match) throws InterruptedException {
        return awaitFrom(0, what, timeoutMs, match);
    }

    Received awaitFrom(int from, String what, long timeoutMs, Predicate<Received> match) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        synchronized (received) {
            while (true) {
                for (int i = from; i < received.size(); i++) {
                    if (match.test(received.get(i))) {
                        return received.get(i);
                    }
                }
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    List<Received> last = received.subList(Math.max(0, received.size() - 8), received.size());
                    throw new AssertionError("timed out after " + timeoutMs + " ms waiting for " + what
                            + "; " + received.size() + " received, the last ones: " + last);
                }
                received.wait(left);
            }
        }
    }

    int count() {
        synchronized (received) {
            return received.size();
        }
    }

    List<Received> all() {
        synchronized (received) {
            return List.copyOf(received);
        }
    }

    static Predicate<Received> onTopic(String topic) {
        return r -> r.topic().equals(topic);
    }

    static Predicate<Received> typed(String topic, String field, String value) {
        return r -> r.topic().equals(topic) && r.json() != null && value.equals(r.json().path(field).asString(null));
    }

    @Override
    public void close() throws Exception {
        try {
            client.disconnectForcibly(0, 1_000);
        } catch (Exception alreadyGone) {
            // the broker may be down or the client still reconnecting
        }
        client.close(true);
    }
}
