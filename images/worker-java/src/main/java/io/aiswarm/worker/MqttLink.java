package io.aiswarm.worker;

import java.nio.charset.StandardCharsets;
import javax.net.SocketFactory;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttCallbackExtended;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;

/**
 * The worker's MQTT connection (Eclipse Paho, MQTT 3.1.1): last will, automatic reconnect,
 * QoS 1 everywhere. Publishing never blocks the caller, because Paho's callback thread must not
 * wait on its own acknowledgements.
 */
public final class MqttLink {
    static final long FIRST_CONNECT_RETRY_MS = 500;
    static final long MAX_CONNECT_RETRY_MS = 5_000;
    /** The MQTT keepalive (docs/protocol.md, "MQTT session"). */
    static final int KEEPALIVE_S = 10;
    private static final int QOS = 1;

    /** What the worker hears from the connection. Called on Paho's callback thread. */
    public interface Listener {
        /** After every successful (re)connect: subscribe, then announce yourself. */
        void onConnected(boolean reconnect);

        void onTaskPayload(byte[] payload);

        void onConnectionLost(Throwable cause);
    }

    private final MqttAsyncClient client;
    private final MqttConnectOptions options;
    private final Topics topics;
    private final Payloads payloads;
    private final Log log;
    private final String brokerUri;

    public MqttLink(Config config, Topics topics, Payloads payloads, Log log, SocketFactory tls, Listener listener)
            throws MqttException {
        this.topics = topics;
        this.payloads = payloads;
        this.log = log;
        this.brokerUri = (config.mqttTls() ? "ssl://" : "tcp://") + config.mqttHost() + ":" + config.mqttPort();
        // Memory persistence: in-flight QoS 1 state is not worth a file in a container.
        this.client = new MqttAsyncClient(brokerUri, config.workerId(), new MemoryPersistence());
        this.options = connectOptions(config, tls);
        client.setCallback(new Callback(listener));
    }

    private MqttConnectOptions connectOptions(Config config, SocketFactory tls) {
        MqttConnectOptions o = new MqttConnectOptions();
        o.setMqttVersion(MqttConnectOptions.MQTT_VERSION_3_1_1);
        o.setCleanSession(true);
        o.setAutomaticReconnect(true);
        o.setMaxReconnectDelay((int) MAX_CONNECT_RETRY_MS);
        o.setKeepAliveInterval(KEEPALIVE_S);
        o.setConnectionTimeout(5);
        o.setMaxInflight(100);
        if (config.mqttUsername() != null) {
            o.setUserName(config.mqttUsername());
        }
        if (config.mqttPassword() != null) {
            o.setPassword(config.mqttPassword().toCharArray());
        }
        // Paho needs an SSLSocketFactory for ssl://, so only plain TCP gets the no-delay factory.
        o.setSocketFactory(tls != null ? tls : new NoDelaySocketFactory());
        setWill(o);
        return o;
    }

    /** The last will carries the time of the connect it was registered with. */
    private void setWill(MqttConnectOptions o) {
        byte[] will = payloads.offline(System.currentTimeMillis()).getBytes(StandardCharsets.UTF_8);
        o.setWill(topics.status(), will, QOS, false);
    }

    public String brokerUri() {
        return brokerUri;
    }

    /**
     * The first connect, retried until it works: a worker often starts before its broker. Later
     * losses are handled by Paho's automatic reconnect.
     */
    public void connect() throws InterruptedException {
        long delay = FIRST_CONNECT_RETRY_MS;
        while (true) {
            try {
                setWill(options);
                client.connect(options).waitForCompletion(10_000);
                return;
            } catch (MqttException e) {
                log.warn("MQTT connect to " + brokerUri + " failed (" + describe(e) + "), retrying in " + delay + " ms");
                Thread.sleep(delay);
                delay = Math.min(delay * 2, MAX_CONNECT_RETRY_MS);
            }
        }
    }

    public void subscribeToTasks() {
        try {
            client.subscribe(topics.tasks(), QOS);
        } catch (MqttException e) {
            log.error("MQTT subscribe to " + topics.tasks() + " failed (" + describe(e) + ")");
        }
    }

    public boolean isConnected() {
        return client.isConnected();
    }

    /** Queues a QoS 1 publish; false (and a log line) when it could not be queued. */
    public boolean publish(String topic, String json) {
        return publishToken(topic, json) != null;
    }

    /** Publishes and waits for the broker's PUBACK; for the final offline status. */
    public boolean publishAndWait(String topic, String json, long timeoutMs) {
        IMqttDeliveryToken token = publishToken(topic, json);
        if (token == null) {
            return false;
        }
        try {
            token.waitForCompletion(timeoutMs);
            return true;
        } catch (MqttException e) {
            log.warn("MQTT publish on " + topic + " not acknowledged (" + describe(e) + ")");
            return false;
        }
    }

    private IMqttDeliveryToken publishToken(String topic, String json) {
        if (!client.isConnected()) {
            return null;
        }
        try {
            MqttMessage message = new MqttMessage(json.getBytes(StandardCharsets.UTF_8));
            message.setQos(QOS);
            message.setRetained(false);
            return client.publish(topic, message);
        } catch (MqttException e) {
            log.warn("MQTT publish on " + topic + " failed (" + describe(e) + ")");
            return null;
        }
    }

    /** A clean disconnect: the broker then drops the last will, so publish offline first. */
    public void close(long timeoutMs) {
        try {
            if (client.isConnected()) {
                IMqttToken token = client.disconnect(timeoutMs);
                token.waitForCompletion(timeoutMs);
            }
        } catch (MqttException e) {
            log.warn("MQTT disconnect failed (" + describe(e) + ")");
        }
        try {
            client.close(true);
        } catch (MqttException e) {
            // closing after a failed disconnect: nothing more to do
        }
    }

    static String describe(MqttException e) {
        Throwable cause = e.getCause();
        String reason = "reason " + e.getReasonCode();
        return cause == null ? reason + ": " + e.getMessage() : reason + ": " + cause.getClass().getSimpleName();
    }

    /** The log line of a connection the broker closed within a keepalive of accepting it: another client takes the session over. */
    static String duplicateIdHint(String workerId, long livedMs) {
        return "MQTT: the broker closed the connection " + livedMs + " ms after accepting it; another client is probably "
                + "connected with the same client id " + workerId + " (WORKER_ID): the broker drops the older connection each "
                + "time one connects. Give every worker its own WORKER_ID (the default is unique)";
    }

    private final class Callback implements MqttCallbackExtended {
        private final Listener listener;

        Callback(Listener listener) {
            this.listener = listener;
        }

        @Override
        public void connectComplete(boolean reconnect, String serverUri) {
            listener.onConnected(reconnect);
        }

        @Override
        public void connectionLost(Throwable cause) {
            setWill(options); // the automatic reconnect reuses these options
            listener.onConnectionLost(cause);
        }

        @Override
        public void messageArrived(String topic, MqttMessage message) {
            if (topic.equals(topics.tasks())) {
                listener.onTaskPayload(message.getPayload());
            }
        }

        @Override
        public void deliveryComplete(IMqttDeliveryToken token) {
            // QoS 1 acknowledgements need no action
        }
    }
}
