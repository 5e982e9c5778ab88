package worker

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc/status"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/config"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/pb"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/protocol"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/provider"
)

// admission is what to do with an incoming task.
type admission int

const (
	accept    admission = iota // idle: take it
	duplicate                  // the task in hand, delivered again (QoS 1): ignore
	reject                     // busy with another task, or shutting down: refuse
)

// decide applies "one task at a time" (docs/protocol.md, delivery rules 2, 6).
func decide(current string, draining bool, incoming string) admission {
	switch {
	case current != "" && current == incoming:
		return duplicate
	case current != "" || draining:
		return reject
	}
	return accept
}

// admit decides under the lock and, on accept, makes the task the one in hand.
func (w *Worker) admit(taskID string) (admission, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := decide(w.current, w.draining, taskID)
	if a == accept {
		w.current = taskID
		w.taskDone = make(chan struct{})
	}
	return a, w.current
}

// onTaskMessage handles a message on our task topic. It never blocks for
// long and never panics on input: a malformed task is logged and dropped.
func (w *Worker) onTaskMessage(_ mqtt.Client, msg mqtt.Message) {
	received := time.Now()
	task, err := protocol.ParseTask(msg.Payload())
	if err != nil {
		w.event(protocol.LevelError, "", "malformed task dropped: "+err.Error())
		return
	}
	switch verdict, inHand := w.admit(task.TaskID); verdict {
	case duplicate:
		w.log.Info("duplicate delivery of the task in hand ignored", "task_id", task.TaskID)
	case reject:
		state := protocol.StatusBusy
		if inHand == "" {
			state = protocol.StatusOffline // idle but shutting down
		}
		w.publishStatus(state, inHand, task.TaskID)
		w.event(protocol.LevelWarn, task.TaskID, fmt.Sprintf("task %s rejected: worker is %s", task.TaskID, state))
	case accept:
		go w.process(task, received)
	}
}

// process runs one task: credential, provider call, simulated work,
// SendResult with retries, status idle. Taking the task publishes no status:
// the master counts us busy from its lease on, and our heartbeats say busy
// with the task id (docs/protocol.md, "Worker behaviour"); on a loaded
// machine that message was a noticeable share of each task's CPU.
func (w *Worker) process(task protocol.Task, received time.Time) {
	id := task.TaskID
	defer w.finish(id)
	ctx := w.hardStop

	w.event(protocol.LevelInfo, id, "task "+id+" started")

	userKey, ok := w.fetchCredential(ctx, task)
	if !ok {
		return
	}
	choice := provider.Choose(w.cfg.LLMProvider, w.serverKeys(userKey))
	result := &pb.TaskResult{
		TaskId: id, WorkerId: w.cfg.WorkerID, Language: config.Language,
		Node: w.cfg.Node, Provider: choice.Provider,
	}
	started := time.Now()
	answer, err := w.llm.Ask(ctx, choice, task.Query)
	if err != nil {
		result.Error = err.Error() // provider errors never contain the key
		w.event(protocol.LevelError, id, "task "+id+": "+err.Error())
	} else {
		result.Answer = answer
	}
	sleep(ctx, w.cfg.SimulatedWork)
	finished := time.Now()
	result.Timings = &pb.Timings{
		ReceivedMs: received.UnixMilli(), StartedMs: started.UnixMilli(), FinishedMs: finished.UnixMilli(),
	}
	w.sendResult(ctx, result, finished.Sub(received))
}

// finish frees the worker; it says idle unless it is shutting down (then
// the shutdown sequence says offline).
func (w *Worker) finish(taskID string) {
	w.mu.Lock()
	w.current = ""
	close(w.taskDone)
	draining := w.draining
	w.mu.Unlock()
	if !draining {
		w.publishStatus(protocol.StatusIdle, "", "")
	}
}

// fetchCredential gets the user's key when the task has one. ok is false
// when the master refused the call (the task is then dropped: the result
// would be refused too). A master that stays unreachable, or no longer holds
// the key, means the worker's own provider settings are used.
func (w *Worker) fetchCredential(ctx context.Context, task protocol.Task) (key string, ok bool) {
	if !task.HasCredential {
		return "", true
	}
	id := task.TaskID
	req := &pb.CredentialRequest{TaskId: id, WorkerId: w.cfg.WorkerID}
	reply, err := retry(ctx, w.cfg.ResultRetryDeadline, callTimeout,
		func(ctx context.Context) (*pb.CredentialReply, error) { return w.master.GetTaskCredential(ctx, req) },
		w.logRetry("GetTaskCredential", id))
	if err != nil {
		code := CodeName(status.Code(err))
		if Retryable(status.Code(err)) {
			w.event(protocol.LevelWarn, id, fmt.Sprintf("GetTaskCredential for task %s failed with %s; using the worker's own provider settings", id, code))
			return "", true
		}
		w.event(protocol.LevelError, id, fmt.Sprintf("GetTaskCredential for task %s rejected by master with %s: %s; task dropped",
			id, code, status.Convert(err).Message()))
		return "", false
	}
	if !reply.GetPresent() {
		w.log.Info("master holds no user key for the task; using the worker's own provider settings", "task_id", id)
		return "", true
	}
	return reply.GetApiKey(), true
}

// sendResult reports the result, retrying transient failures (delivery rule 5).
func (w *Worker) sendResult(ctx context.Context, result *pb.TaskResult, took time.Duration) {
	id := result.TaskId
	ack, err := retry(ctx, w.cfg.ResultRetryDeadline, callTimeout,
		func(ctx context.Context) (*pb.ResultAck, error) { return w.master.SendResult(ctx, result) },
		w.logRetry("SendResult", id))
	if err != nil {
		w.event(protocol.LevelError, id, fmt.Sprintf("SendResult for task %s rejected by master with %s: %s",
			id, CodeName(status.Code(err)), status.Convert(err).Message()))
		return
	}
	outcome := "answer"
	if result.Error != "" {
		outcome = "error result"
	}
	if ack.GetDuplicate() {
		w.event(protocol.LevelInfo, id, fmt.Sprintf("task %s done; master already had a result (duplicate)", id))
		return
	}
	w.event(protocol.LevelInfo, id, fmt.Sprintf("task %s done in %d ms (%s, provider %s)",
		id, took.Milliseconds(), outcome, result.Provider))
}

func (w *Worker) logRetry(call, taskID string) func(int, error, time.Duration) {
	return func(attempt int, err error, wait time.Duration) {
		w.log.Warn(call+" failed; retrying", "task_id", taskID, "code", CodeName(status.Code(err)),
			"attempt", attempt+1, "retry_in_ms", wait.Milliseconds())
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
