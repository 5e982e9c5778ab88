package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/config"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/protocol"
)

// publishTimeout bounds the wait for the broker's PUBACK, so a slow or gone
// broker never blocks task processing.
const publishTimeout = 5 * time.Second

// keepAlive is the MQTT keepalive (docs/protocol.md, "MQTT session").
const keepAlive = 10 * time.Second

// DuplicateIDHint is the log line of a connection the broker closed within a
// keepalive of accepting it: another client is taking the session over.
func DuplicateIDHint(workerID string, lived time.Duration) string {
	return fmt.Sprintf("MQTT: the broker closed the connection %d ms after accepting it; another client is probably "+
		"connected with the same client id %s (WORKER_ID): the broker drops the older connection each "+
		"time one connects. Give every worker its own WORKER_ID (the default is unique)", lived.Milliseconds(), workerID)
}

// mqttOptions sets up the session: client id = worker id (for broker ACLs),
// the offline last will, and automatic reconnection with a short cap.
func (w *Worker) mqttOptions() (*mqtt.ClientOptions, error) {
	cfg := w.cfg
	scheme := "tcp"
	if cfg.MQTTTLS {
		scheme = "ssl"
	}
	opts := mqtt.NewClientOptions().
		AddBroker(scheme+"://"+net.JoinHostPort(cfg.MQTTHost, strconv.Itoa(cfg.MQTTPort))).
		SetClientID(cfg.WorkerID).
		SetCleanSession(true).
		SetKeepAlive(keepAlive). // docs/protocol.md, "MQTT session"
		SetConnectTimeout(5*time.Second).
		SetProtocolVersion(4). // MQTT 3.1.1, no silent fallback to 3.1
		SetAutoReconnect(true).
		SetMaxReconnectInterval(5*time.Second).
		SetOrderMatters(false). // handlers may publish; they must not block the router
		SetOnConnectHandler(w.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			lived := time.Since(time.Unix(0, w.connectedAt.Load()))
			quickDrops := w.quickDrops.Add(1)
			if lived >= keepAlive {
				w.quickDrops.Store(0)
			} else if quickDrops >= 2 {
				w.log.Error(DuplicateIDHint(cfg.WorkerID, lived))
				return
			}
			w.log.Warn("MQTT connection lost; reconnecting", "error", err)
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			w.log.Info("MQTT reconnecting")
		}).
		SetBinaryWill(w.topics.Status(),
			protocol.Encode(protocol.NewStatus(cfg.WorkerID, protocol.StatusOffline, "", nowMS())), 1, false)
	if cfg.MQTTUsername != "" {
		opts.SetUsername(cfg.MQTTUsername)
	}
	if cfg.MQTTPassword.IsSet() {
		opts.SetPassword(cfg.MQTTPassword.Value())
	}
	if cfg.MQTTTLS {
		tlsConfig, err := tlsConfigFor(cfg.MQTTCAFile)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tlsConfig)
	}
	return opts, nil
}

// tlsConfigFor trusts the CA bundle in caFile, or the system roots if "".
func tlsConfigFor(caFile string) (*tls.Config, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tlsConfig, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: MQTT_CA_FILE cannot be read: %v", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: MQTT_CA_FILE holds no PEM certificate", ErrConfig)
	}
	tlsConfig.RootCAs = pool
	return tlsConfig, nil
}

// onConnect runs after every (re)connect: subscribe to our task topic, then
// announce ourselves with register and the current status.
func (w *Worker) onConnect(client mqtt.Client) {
	w.connectedAt.Store(time.Now().UnixNano())
	w.log.Info("MQTT connected", "tasks_topic", w.topics.Tasks())
	token := client.Subscribe(w.topics.Tasks(), 1, w.onTaskMessage)
	if !token.WaitTimeout(publishTimeout) || token.Error() != nil {
		w.log.Error("cannot subscribe to the task topic", "topic", w.topics.Tasks(), "error", token.Error())
	}
	w.publish(w.topics.Register(),
		protocol.NewRegister(w.cfg.WorkerID, config.Language, w.cfg.Node, w.DefaultProvider(), nowMS()))
	status, taskID, _ := w.state()
	w.publishStatus(status, taskID, "")
}

// publish sends a QoS 1 message and waits (bounded) for the broker to take
// it. While the broker is unreachable the message is dropped, not queued:
// a late heartbeat or status would be stale, and onConnect re-announces the
// current state anyway.
func (w *Worker) publish(topic string, payload any) {
	if !w.mqtt.IsConnectionOpen() {
		w.log.Debug("MQTT not connected; message dropped", "topic", topic)
		return
	}
	token := w.mqtt.Publish(topic, 1, false, protocol.Encode(payload))
	if !token.WaitTimeout(publishTimeout) {
		w.log.Warn("MQTT publish not acknowledged in time", "topic", topic)
		return
	}
	if err := token.Error(); err != nil && !errors.Is(err, mqtt.ErrNotConnected) {
		w.log.Warn("MQTT publish failed", "topic", topic, "error", err)
	}
}

// publishStatus sends a status message; rejected names a refused task.
func (w *Worker) publishStatus(status, taskID, rejected string) {
	msg := protocol.NewStatus(w.cfg.WorkerID, status, taskID, nowMS())
	msg.RejectedTaskID = rejected
	w.announce(w.topics.Status(), msg, status == protocol.StatusOffline)
}

// announce publishes a status or heartbeat unless the clean "offline" has
// already gone out: nothing may follow it, or the master would think a
// stopping worker is alive again. last marks the offline message itself.
func (w *Worker) announce(topic string, payload any, last bool) {
	w.announceMu.Lock()
	defer w.announceMu.Unlock()
	if w.offlineSent {
		return
	}
	w.offlineSent = last
	w.publish(topic, payload)
}

// event logs locally and publishes a log event on P/logs, both only when
// level is at or above LOG_LEVEL (the logger's level): an event below it
// costs neither a line nor an MQTT message. message must hold no secret and
// no query text.
func (w *Worker) event(level, taskID, message string) {
	slogLevel, ok := config.ParseLogLevel(level)
	if !ok {
		slogLevel = slog.LevelInfo // unreachable: callers pass protocol.Level* constants
	}
	if !w.log.Enabled(context.Background(), slogLevel) {
		return
	}
	attrs := []any{}
	if taskID != "" {
		attrs = append(attrs, "task_id", taskID)
	}
	w.log.Log(context.Background(), slogLevel, message, attrs...)
	w.publish(w.topics.Logs(), protocol.NewLog(w.cfg.WorkerID, level, message, taskID, nowMS()))
}
