// Package worker runs the worker side of docs/protocol.md: it keeps an MQTT
// session (registration, heartbeats, status, last will), runs one task at a
// time (taking at most one more while a result is being sent), asks the LLM,
// and reports the result to the master over gRPC.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/config"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/pb"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/protocol"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/provider"
)

// ErrConfig wraps set-up errors caused by the configuration (for exit code 2).
var ErrConfig = errors.New("configuration")

// Worker is one running worker. Create it with New and start it with Run.
type Worker struct {
	connectedAt atomic.Int64 // UnixNano of the last accepted MQTT connect
	quickDrops  atomic.Int32 // MQTT connections in a row the broker closed within a keepalive
	cfg         config.Config
	log         *slog.Logger
	topics      protocol.Topics
	llm         *provider.Client
	mqtt        mqtt.Client
	grpc        *grpc.ClientConn
	master      pb.WorkerCallbackClient

	// hardStop ends everything, including the task in hand; it is cancelled
	// when Run returns (after the grace period, if any).
	hardStop context.Context
	cancel   context.CancelFunc

	mu       sync.Mutex
	current  string        // id of the task in hand, "" when idle
	sending  bool          // the task in hand's result is being sent (see decide)
	next     *pending      // a task taken while sending, run right after; nil if none
	taskDone chan struct{} // closed when the worker has no task left in hand
	draining bool          // SIGTERM seen: take no new task

	announceMu  sync.Mutex // orders status/heartbeat publications against the final offline
	offlineSent bool
}

// New prepares a worker; it does not connect yet. Errors wrap ErrConfig when
// they come from the configuration (an unreadable MQTT_CA_FILE, a bad address).
func New(cfg config.Config, log *slog.Logger) (*Worker, error) {
	w := &Worker{
		cfg:    cfg,
		log:    log,
		topics: protocol.Topics{Prefix: cfg.TopicPrefix, WorkerID: cfg.WorkerID},
		llm: &provider.Client{
			HTTP:          &http.Client{},
			GeminiBaseURL: cfg.GeminiBaseURL,
			GeminiModel:   cfg.GeminiModel,
			OpenAIBaseURL: cfg.OpenAIBaseURL,
			OpenAIModel:   cfg.OpenAIModel,
			Timeout:       cfg.LLMTimeout,
			WorkerID:      cfg.WorkerID,
		},
	}
	opts, err := w.mqttOptions()
	if err != nil {
		return nil, err
	}
	w.mqtt = mqtt.NewClient(opts)
	if w.grpc, w.master, err = dialMaster(cfg.MasterGRPCAddr, cfg.GRPCToken.Value()); err != nil {
		return nil, errors.Join(ErrConfig, err)
	}
	return w, nil
}

// DefaultProvider is what the worker uses for a task without a user key; it
// is the "provider" of the register message.
func (w *Worker) DefaultProvider() string {
	return provider.Choose(w.cfg.LLMProvider, w.serverKeys("")).Provider
}

func (w *Worker) serverKeys(userKey string) provider.Keys {
	return provider.Keys{
		User:          userKey,
		ServerGemini:  w.cfg.GeminiAPIKey.Value(),
		ServerOpenAI:  w.cfg.OpenAIAPIKey.Value(),
		OpenAIBaseURL: w.cfg.OpenAIBaseURL,
	}
}

// Run connects, serves tasks until ctx is cancelled (SIGTERM), then shuts
// down gracefully: it finishes the task in hand if that takes at most
// SHUTDOWN_GRACE_MS, publishes status offline and disconnects.
func (w *Worker) Run(ctx context.Context) {
	w.hardStop, w.cancel = context.WithCancel(context.Background())
	defer w.cancel()
	defer w.grpc.Close()

	w.log.Info("worker starting", "language", config.Language, "node", w.cfg.Node,
		"provider_mode", w.cfg.LLMProvider, "provider", w.DefaultProvider(),
		"topic_prefix", w.cfg.TopicPrefix, "master", w.cfg.MasterGRPCAddr)
	if w.cfg.LLMProvider == provider.ModeGemini && !w.cfg.GeminiAPIKey.IsSet() {
		w.log.Warn("LLM_PROVIDER=gemini but no GEMINI_API_KEY: only tasks with a user key can be answered")
	}

	go w.heartbeatLoop() // also before the broker answers: HEALTH_FILE says the process is alive
	if err := w.connect(ctx); err != nil {
		return // stopped before the broker was ever reached: nothing to announce
	}
	<-ctx.Done()
	w.shutdown()
}

// connect makes the first MQTT connection, retrying every second (and
// logging why) until the broker accepts it or ctx ends. After that the client
// reconnects by itself, and onConnect re-announces the worker each time.
func (w *Worker) connect(ctx context.Context) error {
	w.log.Info("connecting to MQTT broker", "host", w.cfg.MQTTHost, "port", w.cfg.MQTTPort, "tls", w.cfg.MQTTTLS)
	for {
		token := w.mqtt.Connect()
		select {
		case <-token.Done():
		case <-ctx.Done():
			w.mqtt.Disconnect(0)
			return ctx.Err()
		}
		if token.Error() == nil {
			return nil
		}
		w.log.Warn("MQTT connect failed; retrying in 1 s", "error", token.Error())
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// shutdown is the SIGTERM sequence of docs/protocol.md.
func (w *Worker) shutdown() {
	w.log.Info("stop signal received; shutting down")
	w.mu.Lock()
	w.draining = true
	inHand, done := w.current, w.taskDone
	waiting := w.next
	w.next = nil
	w.mu.Unlock()

	// The grace covers the task in hand only: a task taken to run next is
	// handed back at once, so the master re-queues it instead of waiting.
	if waiting != nil {
		w.rejectTask(waiting.task.TaskID, inHand)
	}

	if inHand != "" {
		w.log.Info("finishing the task in hand", "task_id", inHand, "grace_ms", w.cfg.ShutdownGrace.Milliseconds())
		select {
		case <-done:
			w.log.Info("task in hand finished within the grace period", "task_id", inHand)
		case <-time.After(w.cfg.ShutdownGrace):
			w.event(protocol.LevelWarn, inHand, "shutdown grace ran out; task "+inHand+" is abandoned for re-dispatch")
		}
	}
	w.publishStatus(protocol.StatusOffline, "", "")
	w.mqtt.Disconnect(500)
	w.log.Info("worker stopped")
}

// heartbeatLoop publishes a heartbeat and refreshes HEALTH_FILE every
// HEARTBEAT_INTERVAL_MS, until the worker stops (heartbeats go on during the
// grace period: they renew the lease of the task in hand).
func (w *Worker) heartbeatLoop() {
	ticker := time.NewTicker(w.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		if err := WriteHealth(w.cfg.HealthFile, time.Now()); err != nil {
			w.log.Warn("cannot write HEALTH_FILE", "path", w.cfg.HealthFile, "error", err)
		}
		status, taskID, held := w.state()
		hb := protocol.NewHeartbeat(w.cfg.WorkerID, config.Language, w.cfg.Node, status, taskID, held, nowMS())
		w.announce(w.topics.Heartbeat(), hb, false)
		select {
		case <-ticker.C:
		case <-w.hardStop.Done():
			return
		}
	}
}

// state is the status to report, the task in hand, and every task held: the
// one in hand, then the one waiting to run next.
func (w *Worker) state() (status, taskID string, held []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current == "" {
		return protocol.StatusIdle, "", nil
	}
	held = []string{w.current}
	if w.next != nil {
		held = append(held, w.next.task.TaskID)
	}
	return protocol.StatusBusy, w.current, held
}

func nowMS() int64 { return time.Now().UnixMilli() }
