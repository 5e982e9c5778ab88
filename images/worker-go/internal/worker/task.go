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
	start     admission = iota // idle: run it now
	queue                      // the result of the task in hand is being sent: run it right after
	duplicate                  // the task in hand or the waiting one, delivered again (QoS 1): ignore
	reject                     // busy otherwise, or shutting down: refuse
)

// slot is what the worker holds when a task arrives.
type slot struct {
	current  string // the task in hand, "" when idle
	sending  bool   // its work is done and SendResult (with retries) is in flight
	next     string // a task taken while sending, waiting to run; "" if none
	draining bool   // SIGTERM seen: take nothing new
}

// decide applies "busy is the master's decision" (docs/protocol.md, delivery
// rules 2 and 6): the master frees us the moment it accepts a result and may
// lease the next task at once, so that task can arrive before SendResult's
// answer does. One such task is kept; anything else while busy is refused.
func decide(s slot, incoming string) admission {
	switch {
	case incoming == s.current || incoming == s.next:
		return duplicate
	case s.draining:
		return reject
	case s.current == "":
		return start
	case s.sending && s.next == "":
		return queue
	}
	return reject
}

// pending is a task taken while the previous result was in flight.
type pending struct {
	task     protocol.Task
	received time.Time
}

// admit decides under the lock and records the task when it is taken.
// inHand is the task in hand afterwards (for a rejection's status).
func (w *Worker) admit(task protocol.Task, received time.Time) (verdict admission, inHand string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	verdict = decide(w.slot(), task.TaskID)
	switch verdict {
	case start:
		w.current = task.TaskID
		w.sending = false
		w.taskDone = make(chan struct{})
	case queue:
		w.next = &pending{task, received}
	}
	return verdict, w.current
}

// slot reads the state decide needs; the caller holds w.mu.
func (w *Worker) slot() slot {
	s := slot{current: w.current, sending: w.sending, draining: w.draining}
	if w.next != nil {
		s.next = w.next.task.TaskID
	}
	return s
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
	switch verdict, inHand := w.admit(task, received); verdict {
	case duplicate:
		w.log.Info("duplicate delivery of a task already taken ignored", "task_id", task.TaskID)
	case reject:
		w.rejectTask(task.TaskID, inHand)
	case queue:
		w.log.Info("task taken as next: the result of the task in hand is being sent",
			"task_id", task.TaskID, "in_hand", inHand)
	case start:
		go w.serve(task, received)
	}
}

// rejectTask tells the master we refuse taskID (it re-queues it): busy with
// inHand, or offline when idle but shutting down.
func (w *Worker) rejectTask(taskID, inHand string) {
	state := protocol.StatusBusy
	if inHand == "" {
		state = protocol.StatusOffline
	}
	w.publishStatus(state, inHand, taskID)
	w.event(protocol.LevelWarn, taskID, fmt.Sprintf("task %s rejected: worker is %s", taskID, state))
}

// serve runs task, then every task taken while a result was in flight.
func (w *Worker) serve(task protocol.Task, received time.Time) {
	for {
		accepted := w.process(task, received)
		next := w.finish(accepted)
		if next == nil {
			return
		}
		task, received = next.task, next.received
	}
}

// process runs one task: credential, provider call, simulated work,
// SendResult with retries. It says whether the master accepted the result.
// Taking the task publishes no status: the master counts us busy from its
// lease on, and our heartbeats say busy with the task id (docs/protocol.md,
// "Worker behaviour"); on a loaded machine that message was a noticeable
// share of each task's CPU.
func (w *Worker) process(task protocol.Task, received time.Time) (accepted bool) {
	id := task.TaskID
	ctx := w.hardStop

	w.event(protocol.LevelInfo, id, "task "+id+" started")

	userKey, ok := w.fetchCredential(ctx, task)
	if !ok {
		return false
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
	w.markSending()
	return w.sendResult(ctx, result, finished.Sub(received))
}

// markSending opens the window in which the next task may be taken: from
// here on the master may accept our result and lease us another task.
func (w *Worker) markSending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sending = true
}

// finish ends the task in hand. If a next task is waiting it becomes the
// task in hand and is returned, and nothing is published. Otherwise the
// worker is free; it says idle only when the master did not accept the
// result (an accepted result already freed it, rule 2), and never while
// shutting down (the shutdown sequence says offline).
func (w *Worker) finish(accepted bool) *pending {
	w.mu.Lock()
	w.sending = false
	if next := w.next; next != nil {
		w.next = nil
		w.current = next.task.TaskID
		w.mu.Unlock()
		return next
	}
	w.current = ""
	close(w.taskDone)
	draining := w.draining
	w.mu.Unlock()
	if !accepted && !draining {
		w.publishStatus(protocol.StatusIdle, "", "")
	}
	return nil
}

// fetchCredential gets the user's key when the task has one and it can be
// used (not with LLM_PROVIDER=offline, docs/protocol.md). ok is false
// when the master refused the call (the task is then dropped: the result
// would be refused too). A master that stays unreachable, or no longer holds
// the key, means the worker's own provider settings are used.
func (w *Worker) fetchCredential(ctx context.Context, task protocol.Task) (key string, ok bool) {
	if !task.HasCredential || w.cfg.LLMProvider == provider.ModeOffline {
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

// sendResult reports the result, retrying transient failures (delivery rule
// 5), and says whether the master accepted it.
func (w *Worker) sendResult(ctx context.Context, result *pb.TaskResult, took time.Duration) (accepted bool) {
	id := result.TaskId
	ack, err := retry(ctx, w.cfg.ResultRetryDeadline, callTimeout,
		func(ctx context.Context) (*pb.ResultAck, error) { return w.master.SendResult(ctx, result) },
		w.logRetry("SendResult", id))
	if err != nil {
		w.event(protocol.LevelError, id, fmt.Sprintf("SendResult for task %s rejected by master with %s: %s",
			id, CodeName(status.Code(err)), status.Convert(err).Message()))
		return false
	}
	outcome := "answer"
	if result.Error != "" {
		outcome = "error result"
	}
	if ack.GetDuplicate() {
		w.event(protocol.LevelInfo, id, fmt.Sprintf("task %s done; master already had a result (duplicate)", id))
		return false
	}
	w.event(protocol.LevelInfo, id, fmt.Sprintf("task %s done in %d ms (%s, provider %s)",
		id, took.Milliseconds(), outcome, result.Provider))
	return ack.GetAccepted()
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
