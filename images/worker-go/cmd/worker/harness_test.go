package main

// Test harness for the process-level tests in worker_test.go: the real worker
// binary, a real Mosquitto on a free loopback port, a fake master that serves
// the real gRPC contract, an MQTT observer, and fake LLM servers. Everything
// listens on 127.0.0.1 only.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/pb"
)

var (
	workerBinary     string   // built once in TestMain
	workerBuildFlags []string // race_test.go adds -race under `go test -race`
	sharedBroker     *broker
	skipReason       string // why process tests cannot run here, if they cannot
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "worker-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	workerBinary = filepath.Join(dir, "worker")
	build := exec.Command("go", append(append([]string{"build"}, workerBuildFlags...), "-o", workerBinary, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build the worker: %v\n%s", err, out)
		return 1
	}
	if sharedBroker, err = startBroker(dir, 0); err != nil {
		skipReason = err.Error()
	} else {
		defer sharedBroker.stop()
	}
	return m.Run()
}

// requireBroker skips a process test, saying why, when Mosquitto is missing.
func requireBroker(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skipf("skipping process test: %s", skipReason)
	}
}

// ---------------------------------------------------------------- Mosquitto

type broker struct {
	port int
	cmd  *exec.Cmd
	dir  string
}

func mosquittoPath() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", fmt.Errorf("mosquitto is not installed (apt-get install -y mosquitto)")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startBroker starts Mosquitto on port (0: a free one) with a config in dir.
// settings follow the listener line; none means anonymous access.
func startBroker(dir string, port int, settings ...string) (*broker, error) {
	bin, err := mosquittoPath()
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, fmt.Sprintf("mosquitto-%d.conf", port))
	if len(settings) == 0 {
		settings = []string{"allow_anonymous true", "persistence false"}
	}
	text := fmt.Sprintf("listener %d 127.0.0.1\n%s\n", port, strings.Join(settings, "\n"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &broker{port: port, cmd: cmd, dir: dir}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			c.Close()
			return b, nil
		}
	}
	b.stop()
	return nil, fmt.Errorf("mosquitto did not listen on port %d: %s", port, stderr.String())
}

// stop ends the broker by its PID: SIGTERM, so that a broker with
// persistence saves its sessions, then SIGKILL if it lingers.
func (b *broker) stop() {
	if b.cmd.ProcessState != nil {
		return // already stopped
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-exited
	}
}

// brokerDir is a temp dir that Mosquitto can still read (config, keys) and
// write (persistence) after it drops root privileges to its own user;
// t.TempDir's parent is 0700.
func brokerDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "worker-go-broker-")
	if err == nil {
		err = os.Chmod(dir, 0o777)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ------------------------------------------------------------- fake master

// fakeMaster serves WorkerCallback like the real master: it checks the
// bearer token, records results, answers duplicates, hands out user keys.
type fakeMaster struct {
	pb.UnimplementedWorkerCallbackServer
	addr  string
	token string

	mu              sync.Mutex
	results         []*pb.TaskResult
	credentialCalls []*pb.CredentialRequest
	userKeys        map[string]string // task id -> user key
	unavailable     int               // the next N SendResult calls fail with UNAVAILABLE
	finalErr        error             // when set, every SendResult call fails with it
	resultDelay     time.Duration     // SendResult waits this long before it answers
	sendStarted     []string          // task ids of SendResult calls, as they arrive
	sendCalls       int
	rejected        int // calls refused for a missing or wrong token
}

func startFakeMaster(t *testing.T, token string) *fakeMaster {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{addr: lis.Addr().String(), token: token, userKeys: map[string]string{}}
	server := grpc.NewServer()
	pb.RegisterWorkerCallbackServer(server, m)
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	return m
}

func (m *fakeMaster) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get("authorization"); len(got) == 1 && got[0] == "Bearer "+m.token {
		return nil
	}
	m.rejected++
	return status.Error(codes.Unauthenticated, "missing or wrong token")
}

func (m *fakeMaster) SendResult(ctx context.Context, r *pb.TaskResult) (*pb.ResultAck, error) {
	m.mu.Lock()
	m.sendStarted = append(m.sendStarted, r.TaskId)
	delay := m.resultDelay
	m.mu.Unlock()
	select { // a slow master: the answer comes late
	case <-time.After(delay):
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sendCalls++
	if err := m.authorize(ctx); err != nil {
		return nil, err
	}
	if m.finalErr != nil {
		return nil, m.finalErr
	}
	if m.unavailable > 0 {
		m.unavailable--
		return nil, status.Error(codes.Unavailable, "master busy, try again")
	}
	for _, prev := range m.results {
		if prev.TaskId == r.TaskId {
			return &pb.ResultAck{Accepted: false, Duplicate: true}, nil
		}
	}
	m.results = append(m.results, r)
	return &pb.ResultAck{Accepted: true}, nil
}

func (m *fakeMaster) GetTaskCredential(ctx context.Context, req *pb.CredentialRequest) (*pb.CredentialReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.authorize(ctx); err != nil {
		return nil, err
	}
	m.credentialCalls = append(m.credentialCalls, req)
	key, ok := m.userKeys[req.TaskId]
	return &pb.CredentialReply{Present: ok, ApiKey: key}, nil
}

// resultsSnapshot returns a copy of the accepted results.
func (m *fakeMaster) resultsSnapshot() []*pb.TaskResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*pb.TaskResult(nil), m.results...)
}

// set changes the fake master's behaviour under its lock.
func (m *fakeMaster) set(change func(m *fakeMaster)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	change(m)
}

// waitSendStarted waits until a SendResult call for taskID has arrived
// (it may not have been answered yet).
func (m *fakeMaster) waitSendStarted(t *testing.T, taskID string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "a SendResult call for "+taskID, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.Contains(m.sendStarted, taskID)
	})
}

// waitResult waits for the accepted result of taskID.
func (m *fakeMaster) waitResult(t *testing.T, taskID string, timeout time.Duration) *pb.TaskResult {
	t.Helper()
	var found *pb.TaskResult
	eventually(t, timeout, "a result for "+taskID, func() bool {
		for _, r := range m.resultsSnapshot() {
			if r.TaskId == taskID {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// ------------------------------------------------------------ MQTT observer

type observed struct {
	topic   string
	payload []byte
	fields  map[string]any // nil when the payload is not a JSON object
}

// observer is a separate MQTT client that records everything under a filter
// and can publish tasks, like the master would.
type observer struct {
	client mqtt.Client
	mu     sync.Mutex
	msgs   []observed
}

// newObserver connects to the broker on port and records messages matching
// filter; tweaks adjust the client options (credentials, TLS).
func newObserver(t *testing.T, port int, filter string, tweaks ...func(*mqtt.ClientOptions)) *observer {
	t.Helper()
	o := &observer{}
	opts := mqtt.NewClientOptions().
		SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond)
	for _, tweak := range tweaks {
		tweak(opts)
	}
	scheme := "tcp"
	if opts.TLSConfig != nil {
		scheme = "ssl"
	}
	opts.AddBroker(fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)).
		SetOnConnectHandler(func(c mqtt.Client) {
			c.Subscribe(filter, 1, func(_ mqtt.Client, msg mqtt.Message) {
				var fields map[string]any
				_ = json.Unmarshal(msg.Payload(), &fields)
				o.mu.Lock()
				o.msgs = append(o.msgs, observed{msg.Topic(), append([]byte(nil), msg.Payload()...), fields})
				o.mu.Unlock()
			}).Wait()
		})
	o.client = mqtt.NewClient(opts)
	if tok := o.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("observer cannot connect: %v", tok.Error())
	}
	time.Sleep(100 * time.Millisecond) // let the subscription settle
	t.Cleanup(func() { o.client.Disconnect(100) })
	return o
}

func (o *observer) all() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observed(nil), o.msgs...)
}

// matching returns the messages on topic whose fields satisfy every want.
func (o *observer) matching(topic string, want map[string]any) []observed {
	var out []observed
	for _, m := range o.all() {
		if m.topic == topic && hasFields(m.fields, want) {
			out = append(out, m)
		}
	}
	return out
}

func hasFields(fields, want map[string]any) bool {
	if fields == nil {
		return false
	}
	for k, v := range want {
		got, ok := fields[k]
		if !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// waitFor waits for a message on topic with the wanted fields.
func (o *observer) waitFor(t *testing.T, timeout time.Duration, topic string, want map[string]any) observed {
	t.Helper()
	var found observed
	eventually(t, timeout, fmt.Sprintf("a message on %s with %v", topic, want), func() bool {
		if ms := o.matching(topic, want); len(ms) > 0 {
			found = ms[0]
			return true
		}
		return false
	})
	return found
}

func (o *observer) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if tok := o.client.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish on %s failed: %v", topic, tok.Error())
	}
}

// taskPayload is a valid task message as the master sends it.
func taskPayload(taskID, query string, hasCredential bool) []byte {
	data, _ := json.Marshal(map[string]any{
		"v": 1, "type": "task", "task_id": taskID, "query": query,
		"lease_ms": 30000, "has_credential": hasCredential, "ts": time.Now().UnixMilli(),
	})
	return data
}

// ---------------------------------------------------------- worker process

type workerProc struct {
	id     string
	prefix string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	code   int
}

// syncBuffer collects the worker's stdout and stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// baseEnv is a fast, offline configuration against the given broker and master.
func baseEnv(t *testing.T, brokerPort int, master *fakeMaster) map[string]string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	return map[string]string{
		"WORKER_ID":                "go-" + strings.ToLower(name),
		"NODE_HOSTNAME":            "vm-test",
		"MQTT_HOST":                "127.0.0.1",
		"MQTT_PORT":                strconv.Itoa(brokerPort),
		"MQTT_TOPIC_PREFIX":        "t" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"MASTER_GRPC_ADDR":         master.addr,
		"GRPC_TOKEN":               "test-token",
		"LLM_PROVIDER":             "offline",
		"LLM_TIMEOUT_MS":           "2000",
		"SIMULATED_WORK_MS":        "200",
		"HEARTBEAT_INTERVAL_MS":    "200",
		"RESULT_RETRY_DEADLINE_MS": "5000",
		"SHUTDOWN_GRACE_MS":        "5000",
		"HEALTH_FILE":              filepath.Join(t.TempDir(), "worker.health"),
	}
}

// startWorker runs the worker binary with exactly env (nothing inherited).
func startWorker(t *testing.T, env map[string]string) *workerProc {
	t.Helper()
	p := &workerProc{id: env["WORKER_ID"], prefix: env["MQTT_TOPIC_PREFIX"], out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(workerBinary)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.out.String(), "DATA RACE") {
			t.Error("the race detector found a data race in the worker")
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *workerProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *workerProc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// waitExit waits for the process to end and returns its exit code.
func (p *workerProc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("worker still running after %v", timeout)
		return -1
	}
}

func (p *workerProc) topic(leaf string) string { return p.prefix + "/workers/" + p.id + "/" + leaf }
func (p *workerProc) logsTopic() string        { return p.prefix + "/logs" }

// waitOutput waits for a line of the worker's output holding every part.
func (p *workerProc) waitOutput(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	var line string
	eventually(t, timeout, fmt.Sprintf("a worker log line with %q", parts), func() bool {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if containsAll(l, parts) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

func containsAll(s string, parts []string) bool {
	for _, part := range parts {
		if !strings.Contains(s, part) {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- fake LLM

// fakeGemini is a fake Gemini REST server: it records the key header and
// answers with the current status.
type fakeGemini struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	keys   []string
}

func startFakeGemini(t *testing.T, status int) *fakeGemini {
	f := &fakeGemini{status: status}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		f.mu.Lock()
		f.keys = append(f.keys, r.Header.Get("x-goog-api-key"))
		code := f.status
		f.mu.Unlock()
		if !strings.HasSuffix(r.URL.Path, ":generateContent") {
			code = http.StatusNotFound
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"Gemini says hi"}]}}]}`)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGemini) setStatus(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = code
}

func (f *fakeGemini) seenKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

// ---------------------------------------------------------------- helpers

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
