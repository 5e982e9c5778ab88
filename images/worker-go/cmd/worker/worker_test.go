package main

// Process-level tests: the real worker binary against a real Mosquitto and a
// fake master speaking the real gRPC contract (see harness_test.go).

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/pb"
)

const wait = 10 * time.Second

// A worker with its fake master and observer, ready to take tasks.
type scene struct {
	master *fakeMaster
	obs    *observer
	w      *workerProc
}

// startScene starts a worker against the shared broker; tweak edits its env.
func startScene(t *testing.T, tweak func(env map[string]string)) *scene {
	t.Helper()
	requireBroker(t)
	master := startFakeMaster(t, "test-token")
	env := baseEnv(t, sharedBroker.port, master)
	if tweak != nil {
		tweak(env)
	}
	obs := newObserver(t, sharedBroker.port, env["MQTT_TOPIC_PREFIX"]+"/#")
	w := startWorker(t, env)
	obs.waitFor(t, wait, w.topic("status"), map[string]any{"status": "idle"})
	return &scene{master, obs, w}
}

// waitIdleAfter waits for the worker to say idle after it took taskID (its
// "task <id> started" event on P/logs, published at the default LOG_LEVEL).
func (s *scene) waitIdleAfter(t *testing.T, taskID string) {
	t.Helper()
	status := s.w.topic("status")
	eventually(t, wait, "status idle after task "+taskID, func() bool {
		return inOrder(s.obs.all(),
			func(m observed) bool {
				return m.topic == s.w.logsTopic() && hasFields(m.fields, map[string]any{"task_id": taskID, "message": "task " + taskID + " started"})
			},
			func(m observed) bool {
				return m.topic == status && hasFields(m.fields, map[string]any{"status": "idle", "task_id": nil})
			})
	})
}

// waitTakenAsNext waits until the worker has taken taskID to run next (its
// log line says so), and fails if it refused it instead.
func (s *scene) waitTakenAsNext(t *testing.T, taskID string) {
	t.Helper()
	rejection := map[string]any{"rejected_task_id": taskID}
	eventually(t, wait, taskID+" taken as next, or refused", func() bool {
		if len(s.obs.matching(s.w.topic("status"), rejection)) > 0 {
			return true
		}
		for _, line := range strings.Split(s.w.out.String(), "\n") {
			if containsAll(line, []string{"task taken as next", "task_id=" + taskID + " "}) {
				return true
			}
		}
		return false
	})
	if ms := s.obs.matching(s.w.topic("status"), rejection); len(ms) > 0 {
		t.Fatalf("%s arrived while the result was being sent and was refused: %s", taskID, ms[0].payload)
	}
}

// waitIdleHeartbeat waits for a heartbeat saying idle among the messages
// observed after the first since ones. After an accepted result the worker
// publishes no status (the master freed it on acceptance); its heartbeats
// are how we see it is free again.
func (s *scene) waitIdleHeartbeat(t *testing.T, since int) {
	t.Helper()
	eventually(t, wait, "an idle heartbeat", func() bool {
		for _, m := range s.obs.all()[since:] {
			if m.topic == s.w.topic("heartbeat") && hasFields(m.fields, map[string]any{"status": "idle", "task_id": nil}) {
				return true
			}
		}
		return false
	})
}

// statusesSince returns the status messages observed after the first since ones.
func (s *scene) statusesSince(since int) []observed {
	var out []observed
	for _, m := range s.obs.all()[since:] {
		if m.topic == s.w.topic("status") {
			out = append(out, m)
		}
	}
	return out
}

func TestRegistrationTaskAndResult(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) {
		env["SIMULATED_WORK_MS"] = "300"
		env["HEARTBEAT_INTERVAL_MS"] = "50" // several heartbeats fall within the task
	})
	w := s.w

	reg := s.obs.waitFor(t, wait, w.topic("register"), map[string]any{
		"v": 1, "type": "register", "worker_id": w.id, "language": "go", "node": "vm-test", "provider": "offline",
	})
	if _, ok := reg.fields["ts"].(float64); !ok {
		t.Errorf("register has no numeric ts: %s", reg.payload)
	}
	s.obs.waitFor(t, wait, w.topic("heartbeat"), map[string]any{
		"v": 1, "type": "heartbeat", "worker_id": w.id, "language": "go", "node": "vm-test", "status": "idle", "task_id": nil,
	})

	s.obs.publish(t, w.topic("tasks"), taskPayload("q_001", "What is Docker Swarm?", false))
	s.obs.waitFor(t, wait, w.topic("heartbeat"), map[string]any{"status": "busy", "task_id": "q_001"})
	r := s.master.waitResult(t, "q_001", wait)

	if r.WorkerId != w.id || r.Language != "go" || r.Node != "vm-test" || r.Provider != "offline" || r.Error != "" {
		t.Errorf("result fields wrong: %v", r)
	}
	if !strings.HasPrefix(r.Answer, "[offline]") {
		t.Errorf("offline answer = %q, want it to start with [offline]", r.Answer)
	}
	tm := r.Timings
	if tm == nil || tm.ReceivedMs <= 0 || tm.StartedMs < tm.ReceivedMs || tm.FinishedMs < tm.StartedMs+300 {
		t.Errorf("timings wrong (simulated work is 300 ms): %v", tm)
	}
	s.waitIdleHeartbeat(t, len(s.obs.all()))
	s.obs.waitFor(t, wait, w.logsTopic(), map[string]any{"type": "log", "source": w.id, "level": "info", "task_id": "q_001", "message": "task q_001 started"})
	eventually(t, wait, "a 'done' log event", func() bool {
		for _, m := range s.obs.matching(w.logsTopic(), map[string]any{"task_id": "q_001"}) {
			if strings.HasPrefix(m.fields["message"].(string), "task q_001 done in ") {
				return true
			}
		}
		return false
	})

	line := w.waitOutput(t, wait, "worker starting", "worker_id="+w.id, "language=go", "node=vm-test", "provider_mode=offline")
	if strings.Contains(w.out.String(), "test-token") {
		t.Errorf("the gRPC token appears in the worker's output: %s", line)
	}
}

func TestHealthcheckFlag(t *testing.T) {
	t.Parallel()
	s := startScene(t, nil)
	healthFile := ""
	for _, kv := range s.w.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "HEALTH_FILE="); ok {
			healthFile = v
		}
	}
	run := func(path string) int {
		cmd := exec.Command(workerBinary, "-healthcheck")
		cmd.Env = []string{"HEALTH_FILE=" + path, "HEARTBEAT_INTERVAL_MS=200"}
		_ = cmd.Run()
		return cmd.ProcessState.ExitCode()
	}
	eventually(t, wait, "a healthy worker", func() bool { return run(healthFile) == 0 })
	if code := run(filepath.Join(t.TempDir(), "missing")); code != 1 {
		t.Errorf("healthcheck of a missing file exited %d, want 1", code)
	}
	stale := filepath.Join(t.TempDir(), "stale")
	old := time.Now().Add(-time.Minute).UnixMilli()
	if err := os.WriteFile(stale, []byte(strconv.FormatInt(old, 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(stale); code != 1 {
		t.Errorf("healthcheck of a minute-old file exited %d, want 1", code)
	}
}

func TestBusyWorkerRejectsAndIgnoresDuplicates(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) { env["SIMULATED_WORK_MS"] = "1500" })
	w := s.w
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_a", "first", false))
	s.obs.waitFor(t, wait, w.topic("heartbeat"), map[string]any{"status": "busy", "task_id": "q_a"})

	s.obs.publish(t, w.topic("tasks"), taskPayload("q_a", "first", false)) // QoS 1 duplicate
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_b", "second", false))
	s.obs.waitFor(t, wait, w.topic("status"), map[string]any{"status": "busy", "task_id": "q_a", "rejected_task_id": "q_b"})

	s.master.waitResult(t, "q_a", wait)
	s.waitIdleHeartbeat(t, len(s.obs.all()))
	time.Sleep(500 * time.Millisecond) // room for a wrong second result to arrive
	results := s.master.resultsSnapshot()
	s.master.mu.Lock()
	calls := s.master.sendCalls
	s.master.mu.Unlock()
	if len(results) != 1 || calls != 1 {
		t.Errorf("got %d results from %d SendResult calls, want exactly one for q_a", len(results), calls)
	}
	if n := len(s.obs.matching(w.topic("status"), map[string]any{"status": "busy", "task_id": "q_a"})); n != 1 {
		// only the one rejecting q_b: taking q_a says nothing, nor does the duplicate
		t.Errorf("%d busy statuses for q_a, want 1", n)
	}
}

// Taking a task says nothing (heartbeats say busy), and neither does an
// accepted result: the master freed the worker when it accepted it.
func TestAcceptedResultPublishesNoStatus(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) {
		env["SIMULATED_WORK_MS"] = "500"
		env["HEARTBEAT_INTERVAL_MS"] = "50"
	})
	w := s.w
	seenBefore := len(s.obs.all())
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_quiet", "hello", false))
	s.master.waitResult(t, "q_quiet", wait)
	s.waitIdleHeartbeat(t, len(s.obs.all()))
	time.Sleep(300 * time.Millisecond) // room for a wrong idle status to arrive

	if statuses := s.statusesSince(seenBefore); len(statuses) != 0 {
		t.Errorf("%d status messages while taking and finishing an accepted task, want none", len(statuses))
		for _, m := range statuses {
			t.Logf("  %s", m.payload)
		}
	}
	busy := 0
	for _, m := range s.obs.all()[seenBefore:] {
		if m.topic == w.topic("heartbeat") && hasFields(m.fields, map[string]any{"status": "busy", "task_id": "q_quiet"}) {
			busy++
		}
	}
	if busy == 0 {
		t.Error("no heartbeat said busy with q_quiet while it ran")
	}
}

// A result the master did not accept (a duplicate, or a final gRPC error)
// leaves the worker free in the master's eyes only once it says idle.
func TestUnacceptedResultSaysIdle(t *testing.T) {
	t.Parallel()
	cases := map[string]func(m *fakeMaster, taskID string){
		"duplicate": func(m *fakeMaster, taskID string) {
			m.results = append(m.results, &pb.TaskResult{TaskId: taskID}) // another worker was first
		},
		"permission_denied": func(m *fakeMaster, _ string) {
			m.finalErr = status.Error(codes.PermissionDenied, "the lease belongs to another worker")
		},
	}
	for name, setUp := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startScene(t, func(env map[string]string) { env["SIMULATED_WORK_MS"] = "0" })
			taskID := "q_" + name
			s.master.set(func(m *fakeMaster) { setUp(m, taskID) })
			s.obs.publish(t, s.w.topic("tasks"), taskPayload(taskID, "hello", false))
			s.master.waitSendStarted(t, taskID, wait)
			s.waitIdleAfter(t, taskID)
			s.master.mu.Lock()
			calls := s.master.sendCalls
			s.master.mu.Unlock()
			if calls != 1 {
				t.Errorf("SendResult called %d times, want 1 (the answer is final)", calls)
			}
		})
	}
}

// The master may lease the next task the moment it accepts a result, so that
// task can arrive before the worker has read SendResult's answer: it is
// taken and run right after. A third task in that window is refused.
func TestTaskArrivingWhileTheResultIsSentRunsNext(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) { env["SIMULATED_WORK_MS"] = "100" })
	w := s.w
	s.master.set(func(m *fakeMaster) { m.resultDelay = 800 * time.Millisecond })
	seenBefore := len(s.obs.all())

	s.obs.publish(t, w.topic("tasks"), taskPayload("q_first", "one", false))
	s.master.waitSendStarted(t, "q_first", wait)
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_next", "two", false))
	// The worker handles messages concurrently: make sure q_next is in before q_third.
	s.waitTakenAsNext(t, "q_next")
	// QoS 1 redeliveries of the task in hand and of the waiting one: ignored.
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_first", "one", false))
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_next", "two", false))
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_third", "three", false))
	s.obs.waitFor(t, wait, w.topic("status"), map[string]any{"status": "busy", "task_id": "q_first", "rejected_task_id": "q_third"})
	s.master.mu.Lock()
	firstAnswered := len(s.master.results) > 0
	s.master.mu.Unlock()
	if firstAnswered {
		t.Fatal("q_first was answered before the other tasks arrived: the test did not exercise the window")
	}

	s.master.waitResult(t, "q_next", wait)
	s.waitIdleHeartbeat(t, len(s.obs.all()))
	time.Sleep(300 * time.Millisecond) // room for a wrong status or result

	var got []string
	for _, r := range s.master.resultsSnapshot() {
		got = append(got, r.TaskId)
	}
	if strings.Join(got, ",") != "q_first,q_next" {
		t.Errorf("results %v, want q_first then q_next (and nothing for the refused q_third)", got)
	}
	s.master.mu.Lock()
	calls := s.master.sendCalls
	s.master.mu.Unlock()
	if calls != 2 {
		t.Errorf("SendResult called %d times, want 2: a redelivered task must not run again", calls)
	}
	statuses := s.statusesSince(seenBefore)
	if len(statuses) != 1 || !hasFields(statuses[0].fields, map[string]any{"rejected_task_id": "q_third"}) {
		t.Errorf("%d status messages, want only the rejection of q_third (no rejection of q_next, no idle)", len(statuses))
		for _, m := range statuses {
			t.Logf("  %s", m.payload)
		}
	}
}

// After SIGTERM the grace covers the task in hand only: a task taken to run
// next is handed back at once (rejected_task_id), so the master re-queues it.
func TestSIGTERMHandsBackTheWaitingTask(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) { env["SIMULATED_WORK_MS"] = "100" })
	w := s.w
	s.master.set(func(m *fakeMaster) { m.resultDelay = 800 * time.Millisecond })

	s.obs.publish(t, w.topic("tasks"), taskPayload("q_in_hand", "one", false))
	s.master.waitSendStarted(t, "q_in_hand", wait)
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_waiting", "two", false))
	s.waitTakenAsNext(t, "q_waiting")
	w.signal(syscall.SIGTERM)

	s.obs.waitFor(t, wait, w.topic("status"), map[string]any{"status": "busy", "task_id": "q_in_hand", "rejected_task_id": "q_waiting"})
	if code := w.waitExit(t, wait); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	s.obs.waitFor(t, wait, w.topic("status"), map[string]any{"status": "offline"})
	var got []string
	for _, r := range s.master.resultsSnapshot() {
		got = append(got, r.TaskId)
	}
	if strings.Join(got, ",") != "q_in_hand" {
		t.Errorf("results %v, want only q_in_hand (finished within the grace)", got)
	}
}

// With the default LOG_LEVEL a task's info events are printed and published;
// with LOG_LEVEL=warn they are neither, while errors still are.
func TestLogLevelFiltersStdoutAndPLogs(t *testing.T) {
	t.Parallel()
	t.Run("default_info", func(t *testing.T) {
		t.Parallel()
		s := startScene(t, func(env map[string]string) { env["SIMULATED_WORK_MS"] = "0" })
		s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_info", "hello", false))
		s.master.waitResult(t, "q_info", wait)
		s.obs.waitFor(t, wait, s.w.logsTopic(), map[string]any{"level": "info", "task_id": "q_info", "message": "task q_info started"})
		eventually(t, wait, "the info event 'task q_info done'", func() bool {
			for _, m := range s.obs.matching(s.w.logsTopic(), map[string]any{"level": "info", "task_id": "q_info"}) {
				if strings.HasPrefix(fmt.Sprint(m.fields["message"]), "task q_info done in ") {
					return true
				}
			}
			return false
		})
		s.w.waitOutput(t, wait, "level=INFO", "task q_info started")
	})
	t.Run("warn", func(t *testing.T) {
		t.Parallel()
		s := startScene(t, func(env map[string]string) {
			env["SIMULATED_WORK_MS"] = "0"
			env["LOG_LEVEL"] = "warn"
		})
		w := s.w
		s.obs.publish(t, w.topic("tasks"), taskPayload("q_warn", "hello", false))
		if r := s.master.waitResult(t, "q_warn", wait); !strings.HasPrefix(r.Answer, "[offline]") {
			t.Errorf("answer = %q", r.Answer)
		}
		// The "done" event would go out before the worker is free again.
		s.waitIdleHeartbeat(t, len(s.obs.all()))
		if logs := s.obs.matching(w.logsTopic(), nil); len(logs) != 0 {
			t.Errorf("%d log messages on P/logs with LOG_LEVEL=warn, want none; first: %s", len(logs), logs[0].payload)
		}
		if strings.Contains(w.out.String(), "level=INFO") {
			t.Errorf("info lines printed with LOG_LEVEL=warn:\n%s", w.out.String())
		}
		// Events at or above warn still go out: a malformed task is an error.
		s.obs.publish(t, w.topic("tasks"), []byte("not json"))
		s.obs.waitFor(t, wait, w.logsTopic(), map[string]any{"type": "log", "source": w.id, "level": "error"})
		w.waitOutput(t, wait, "level=ERROR", "malformed task dropped")
	})
}

func TestMalformedTasksDoNotCrash(t *testing.T) {
	t.Parallel()
	s := startScene(t, nil)
	w := s.w
	bad := [][]byte{
		[]byte("not json"),
		[]byte(`[1,2,3]`),
		[]byte(`null`),
		[]byte(`{"v":2,"type":"task","task_id":"x","query":"q","lease_ms":1,"has_credential":false,"ts":1}`),
		[]byte(`{"v":1,"type":"task","task_id":"x","query":"q"}`),
		[]byte(`{"v":1,"type":"task","task_id":7,"query":"q","lease_ms":1,"has_credential":false,"ts":1}`),
		[]byte(`{"v":1,"type":"task","task_id":"x","query":"","lease_ms":1,"has_credential":false,"ts":1}`),
		append([]byte(`{"v":1,"pad":"`), append(bytes.Repeat([]byte("x"), 70*1024), []byte(`"}`)...)...),
		{0xff, 0xfe, 0x00},
	}
	for _, payload := range bad {
		s.obs.publish(t, w.topic("tasks"), payload)
	}
	eventually(t, wait, "an error log event per malformed task", func() bool {
		return len(s.obs.matching(w.logsTopic(), map[string]any{"level": "error"})) >= len(bad)
	})
	if !w.running() {
		t.Fatalf("worker died on malformed input")
	}
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_ok", "still there?", false))
	if r := s.master.waitResult(t, "q_ok", wait); !strings.HasPrefix(r.Answer, "[offline]") {
		t.Errorf("answer after malformed input = %q", r.Answer)
	}
	for _, m := range s.obs.matching(w.logsTopic(), map[string]any{"level": "error"}) {
		if strings.Contains(m.fields["message"].(string), "xxxx") {
			t.Errorf("a log event echoes the payload: %.80s", m.fields["message"])
		}
	}
}

func TestWrongTokenIsRejectedWithAClearLog(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) { env["GRPC_TOKEN"] = "wrong-token" })
	w := s.w
	s.obs.publish(t, w.topic("tasks"), taskPayload("q_tok", "hello", false))
	w.waitOutput(t, wait, "UNAUTHENTICATED", "q_tok")
	s.obs.waitFor(t, wait, w.logsTopic(), map[string]any{"level": "error", "task_id": "q_tok"})
	s.waitIdleAfter(t, "q_tok")
	if len(s.master.resultsSnapshot()) != 0 {
		t.Error("the master accepted a result with a wrong token")
	}
	s.master.mu.Lock()
	calls, rejected := s.master.sendCalls, s.master.rejected
	s.master.mu.Unlock()
	if calls != 1 || rejected != 1 {
		t.Errorf("SendResult called %d times (%d rejected): UNAUTHENTICATED is final, want 1", calls, rejected)
	}
	if strings.Contains(w.out.String(), "wrong-token") {
		t.Error("the token appears in the worker's output")
	}
	if !w.running() {
		t.Error("worker exited after a rejected call")
	}
}

func TestTransientMasterErrorsAreRetried(t *testing.T) {
	t.Parallel()
	s := startScene(t, nil)
	s.master.mu.Lock()
	s.master.unavailable = 2
	s.master.mu.Unlock()
	start := time.Now()
	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_retry", "hello", false))
	s.master.waitResult(t, "q_retry", wait)
	s.master.mu.Lock()
	calls := s.master.sendCalls
	s.master.mu.Unlock()
	if calls != 3 {
		t.Errorf("SendResult called %d times, want 3 (two UNAVAILABLE, then accepted)", calls)
	}
	if took := time.Since(start); took < 200*time.Millisecond+600*time.Millisecond {
		t.Errorf("result after %v: the backoff (200 ms + 400 ms) was not honoured", took)
	}
	s.w.waitOutput(t, wait, "SendResult failed; retrying", "UNAVAILABLE", "q_retry")
}

func TestUserKeyIsFetchedByRPCAndNeverOnTheBroker(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	const userKey = "user-key-7f3a9c"
	gemini := startFakeGemini(t, 200)
	everything := newObserver(t, sharedBroker.port, "#")
	s := startScene(t, func(env map[string]string) {
		env["LLM_PROVIDER"] = "auto"
		env["GEMINI_BASE_URL"] = gemini.URL
	})
	s.master.mu.Lock()
	s.master.userKeys["q_key"] = userKey
	s.master.mu.Unlock()

	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_key", "use my key", true))
	r := s.master.waitResult(t, "q_key", wait)
	if r.Provider != "gemini" || r.Answer != "Gemini says hi" {
		t.Errorf("result = %v, want the Gemini answer", r)
	}
	if keys := gemini.seenKeys(); len(keys) != 1 || keys[0] != userKey {
		t.Errorf("Gemini got keys %q, want the user's key", keys)
	}
	s.master.mu.Lock()
	calls := s.master.credentialCalls
	s.master.mu.Unlock()
	if len(calls) != 1 || calls[0].TaskId != "q_key" || calls[0].WorkerId != s.w.id {
		t.Errorf("GetTaskCredential calls = %v", calls)
	}
	s.waitIdleHeartbeat(t, len(s.obs.all()))
	for _, m := range everything.all() {
		if bytes.Contains(m.payload, []byte(userKey)) {
			t.Errorf("the user key travelled on MQTT topic %s", m.topic)
		}
	}
	if strings.Contains(s.w.out.String(), userKey) || strings.Contains(r.String(), userKey) {
		t.Error("the user key appears in the worker's logs or in the result")
	}
}

func TestProviderErrorBecomesAnErrorResultAndTheWorkerKeepsServing(t *testing.T) {
	t.Parallel()
	gemini := startFakeGemini(t, 500)
	s := startScene(t, func(env map[string]string) {
		env["LLM_PROVIDER"] = "auto"
		env["GEMINI_API_KEY"] = "server-key-1b2c"
		env["GEMINI_BASE_URL"] = gemini.URL
	})
	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_500", "hello", false))
	r := s.master.waitResult(t, "q_500", wait)
	if r.Error != "gemini: HTTP 500" || r.Answer != "" || r.Provider != "gemini" {
		t.Errorf("result = %v, want error 'gemini: HTTP 500'", r)
	}
	s.obs.waitFor(t, wait, s.w.logsTopic(), map[string]any{"level": "error", "task_id": "q_500"})
	s.waitIdleHeartbeat(t, len(s.obs.all()))

	gemini.setStatus(200)
	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_after", "hello again", false))
	if r := s.master.waitResult(t, "q_after", wait); r.Answer != "Gemini says hi" {
		t.Errorf("second result = %v", r)
	}
	if keys := gemini.seenKeys(); len(keys) != 2 || keys[0] != "server-key-1b2c" {
		t.Errorf("Gemini got keys %q, want the server key twice", keys)
	}
	if strings.Contains(s.w.out.String(), "server-key-1b2c") {
		t.Error("the server key appears in the worker's output")
	}
}

func TestSIGTERMFinishesTheTaskInHand(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) { env["SIMULATED_WORK_MS"] = "1000" })
	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_term", "hello", false))
	s.obs.waitFor(t, wait, s.w.topic("heartbeat"), map[string]any{"status": "busy", "task_id": "q_term"})
	s.w.signal(syscall.SIGTERM)
	s.w.waitOutput(t, wait, "stop signal received")
	// A task that arrives during the grace period is refused, for re-dispatch.
	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_late", "too late", false))
	s.obs.waitFor(t, wait, s.w.topic("status"), map[string]any{"status": "busy", "task_id": "q_term", "rejected_task_id": "q_late"})

	if code := s.w.waitExit(t, wait); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if len(s.master.resultsSnapshot()) != 1 {
		t.Fatal("the task in hand was not finished before exit")
	}
	s.obs.waitFor(t, wait, s.w.topic("status"), map[string]any{"status": "offline", "task_id": nil})
	// Nothing says idle or heartbeats after the clean offline.
	msgs := s.obs.all()
	for i, m := range msgs {
		if m.topic == s.w.topic("status") && m.fields["status"] == "offline" {
			for _, later := range msgs[i+1:] {
				if strings.HasPrefix(later.topic, s.w.prefix+"/workers/") {
					t.Errorf("message on %s after offline: %s", later.topic, later.payload)
				}
			}
			break
		}
	}
}

func TestSIGTERMGraceRunsOut(t *testing.T) {
	t.Parallel()
	s := startScene(t, func(env map[string]string) {
		env["SIMULATED_WORK_MS"] = "20000"
		env["SHUTDOWN_GRACE_MS"] = "300"
	})
	s.obs.publish(t, s.w.topic("tasks"), taskPayload("q_long", "hello", false))
	s.obs.waitFor(t, wait, s.w.topic("heartbeat"), map[string]any{"status": "busy", "task_id": "q_long"})
	start := time.Now()
	s.w.signal(syscall.SIGTERM)
	if code := s.w.waitExit(t, wait); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("exit took %v with a 300 ms grace", took)
	}
	s.obs.waitFor(t, wait, s.w.topic("status"), map[string]any{"status": "offline"})
	if len(s.master.resultsSnapshot()) != 0 {
		t.Error("a result was sent for an abandoned task")
	}
}

func TestLastWillOnSIGKILL(t *testing.T) {
	t.Parallel()
	s := startScene(t, nil)
	s.w.signal(syscall.SIGKILL)
	s.w.waitExit(t, wait)
	s.obs.waitFor(t, wait, s.w.topic("status"), map[string]any{
		"v": 1, "type": "status", "worker_id": s.w.id, "status": "offline", "task_id": nil,
	})
}

func TestBrokerOutageResultStillSentThenReconnect(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	// The broker keeps sessions across its restart, like a production one, so
	// the observer's subscription queues the worker's re-registration even if
	// the worker reconnects before the observer does.
	dir := brokerDir(t)
	settings := []string{"allow_anonymous true", "persistence true", "persistence_location " + dir + "/"}
	b, err := startBroker(dir, 0, settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	master := startFakeMaster(t, "test-token")
	env := baseEnv(t, b.port, master)
	env["SIMULATED_WORK_MS"] = "1500"
	obs := newObserver(t, b.port, env["MQTT_TOPIC_PREFIX"]+"/#", func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false)
	})
	w := startWorker(t, env)
	obs.waitFor(t, wait, w.topic("status"), map[string]any{"status": "idle"})

	obs.publish(t, w.topic("tasks"), taskPayload("q_outage", "hello", false))
	obs.waitFor(t, wait, w.topic("heartbeat"), map[string]any{"status": "busy", "task_id": "q_outage"})
	b.stop()
	seenBeforeOutage := len(obs.all())
	master.waitResult(t, "q_outage", wait) // gRPC does not need the broker

	b2, err := startBroker(dir, b.port, settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.stop)
	if _, err := os.Stat(filepath.Join(dir, "mosquitto.db")); err != nil {
		t.Errorf("the broker saved no sessions before its restart: %v", err)
	}
	// After reconnecting: register, then status idle, then heartbeats.
	eventually(t, 20*time.Second, "register, status idle and heartbeats after the broker came back", func() bool {
		return inOrder(obs.all()[seenBeforeOutage:],
			func(m observed) bool { return m.topic == w.topic("register") && m.fields["worker_id"] == w.id },
			func(m observed) bool { return m.topic == w.topic("status") && m.fields["status"] == "idle" },
			func(m observed) bool { return m.topic == w.topic("heartbeat") },
			func(m observed) bool { return m.topic == w.topic("heartbeat") })
	})
	// And it still takes tasks.
	obs.publish(t, w.topic("tasks"), taskPayload("q_after_outage", "hello", false))
	master.waitResult(t, "q_after_outage", wait)
}

// inOrder says whether msgs hold, in this order, one message for each test.
func inOrder(msgs []observed, tests ...func(observed) bool) bool {
	for _, m := range msgs {
		if len(tests) > 0 && tests[0](m) {
			tests = tests[1:]
		}
	}
	return len(tests) == 0
}

func TestBadConfigurationExitsWithCode2(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env     []string
		wantVar string
	}{
		{[]string{}, "GRPC_TOKEN"},
		{[]string{"GRPC_TOKEN=x", "MQTT_PORT=abc"}, "MQTT_PORT"},
		{[]string{"GRPC_TOKEN=x", "WORKER_ID=no spaces allowed"}, "WORKER_ID"},
		{[]string{"GRPC_TOKEN=x", "SIMULATED_WORK_MS=soon"}, "SIMULATED_WORK_MS"},
		{[]string{"GRPC_TOKEN_FILE=/nonexistent/token"}, "GRPC_TOKEN_FILE"},
		{[]string{"GRPC_TOKEN=x", "MQTT_TLS=true", "MQTT_CA_FILE=/nonexistent/ca.pem"}, "MQTT_CA_FILE"},
		{[]string{"GRPC_TOKEN=x", "LOG_LEVEL=verbose"}, "LOG_LEVEL must be one of debug, info, warn, error"},
	}
	for _, tc := range cases {
		cmd := exec.Command(workerBinary)
		cmd.Env = tc.env
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), tc.wantVar) {
			t.Errorf("env %v: exit %d, output %q; want exit 2 naming %s", tc.env, code, out, tc.wantVar)
		}
	}
}
