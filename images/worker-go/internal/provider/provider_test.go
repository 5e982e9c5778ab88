package provider

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	all := Keys{User: "user", ServerGemini: "srv-g", ServerOpenAI: "srv-o", OpenAIBaseURL: "http://o"}
	cases := []struct {
		mode string
		keys Keys
		want Choice
	}{
		{ModeAuto, all, Choice{Gemini, "user"}},
		{ModeAuto, Keys{ServerGemini: "srv-g", OpenAIBaseURL: "http://o"}, Choice{Gemini, "srv-g"}},
		{ModeAuto, Keys{OpenAIBaseURL: "http://o", ServerOpenAI: "srv-o"}, Choice{OpenAI, "srv-o"}},
		{ModeAuto, Keys{OpenAIBaseURL: "http://o"}, Choice{OpenAI, ""}},
		{ModeAuto, Keys{ServerOpenAI: "srv-o"}, Choice{Offline, ""}}, // a key without endpoint is not enough
		{ModeAuto, Keys{}, Choice{Offline, ""}},
		{ModeGemini, all, Choice{Gemini, "user"}},
		{ModeGemini, Keys{ServerGemini: "srv-g"}, Choice{Gemini, "srv-g"}},
		{ModeGemini, Keys{}, Choice{Gemini, ""}},
		{ModeOpenAI, all, Choice{OpenAI, "user"}},
		{ModeOpenAI, Keys{ServerOpenAI: "srv-o", OpenAIBaseURL: "http://o"}, Choice{OpenAI, "srv-o"}},
		{ModeOffline, all, Choice{Offline, ""}},
	}
	for _, tc := range cases {
		if got := Choose(tc.mode, tc.keys); got != tc.want {
			t.Errorf("Choose(%s, %+v) = %+v, want %+v", tc.mode, tc.keys, got, tc.want)
		}
	}
}

func TestParseGeminiAnswer(t *testing.T) {
	got, err := ParseGeminiAnswer([]byte(`{"candidates":[{"content":{"parts":[{"text":"Hello, "},{"text":"swarm"}]}},{"content":{"parts":[{"text":"ignored"}]}}]}`))
	if err != nil || got != "Hello, swarm" {
		t.Errorf("ParseGeminiAnswer = %q, %v", got, err)
	}
	for _, body := range []string{`nope`, `{}`, `{"candidates":[]}`, `{"candidates":[{"content":{"parts":[]}}]}`, `{"candidates":[{"finishReason":"SAFETY"}]}`} {
		if _, err := ParseGeminiAnswer([]byte(body)); err == nil || !strings.HasPrefix(err.Error(), "gemini: ") {
			t.Errorf("ParseGeminiAnswer(%s) error = %v, want a gemini error", body, err)
		}
	}
}

func TestParseOpenAIAnswer(t *testing.T) {
	got, err := ParseOpenAIAnswer([]byte(`{"choices":[{"message":{"role":"assistant","content":"Hi"}}]}`))
	if err != nil || got != "Hi" {
		t.Errorf("ParseOpenAIAnswer = %q, %v", got, err)
	}
	for _, body := range []string{`[]`, `{}`, `{"choices":[]}`, `{"choices":[{"message":{"content":""}}]}`} {
		if _, err := ParseOpenAIAnswer([]byte(body)); err == nil || !strings.HasPrefix(err.Error(), "openai: ") {
			t.Errorf("ParseOpenAIAnswer(%s) error = %v, want an openai error", body, err)
		}
	}
}

func TestOfflineAnswer(t *testing.T) {
	c := &Client{WorkerID: "go-vm2-1a2b"}
	got, err := c.Ask(context.Background(), Choice{Provider: Offline}, "What is Docker Swarm?")
	want := "[offline] No LLM is configured on worker go-vm2-1a2b, so this is not a real answer " +
		"(set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: What is Docker Swarm?"
	if err != nil || got != want {
		t.Errorf("offline answer = %q, %v; want %q", got, err, want)
	}
	long := strings.Repeat("x", 16000)
	if got := OfflineAnswer("w", long); !strings.HasSuffix(got, "Your question was: "+long) {
		t.Errorf("offline answer does not echo the whole query (len %d)", len(got))
	}
}

// fakeLLM is a fake provider HTTP server on 127.0.0.1 that records requests
// and answers with a fixed status and body, or never answers (hang).
type fakeLLM struct {
	*httptest.Server
	status int
	body   string
	hang   bool

	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, path string
	header       http.Header
	body         map[string]any
}

func newFakeLLM(t *testing.T, status int, body string, hang bool) *fakeLLM {
	f := &fakeLLM{status: status, body: body, hang: hang}
	release := make(chan struct{})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var parsed map[string]any
		_ = json.Unmarshal(data, &parsed)
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.Header.Clone(), parsed})
		f.mu.Unlock()
		if f.hang {
			select { // until the client gives up or the test ends
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
	}))
	t.Cleanup(func() { close(release); f.Close() })
	return f
}

func (f *fakeLLM) only(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 {
		t.Fatalf("fake server got %d requests, want 1", len(f.requests))
	}
	return f.requests[0]
}

func clientFor(gemini, openai *fakeLLM, timeout time.Duration) *Client {
	c := &Client{HTTP: &http.Client{}, GeminiModel: "gemini-test", OpenAIModel: "llama-test", Timeout: timeout, WorkerID: "w1"}
	if gemini != nil {
		c.GeminiBaseURL = gemini.URL
	}
	if openai != nil {
		c.OpenAIBaseURL = openai.URL + "/v1"
	}
	return c
}

const geminiOK = `{"candidates":[{"content":{"role":"model","parts":[{"text":"Swarm is "},{"text":"Docker's orchestrator."}]}}]}`

func TestGeminiSuccessSendsTheContractRequest(t *testing.T) {
	fake := newFakeLLM(t, 200, geminiOK, false)
	answer, err := clientFor(fake, nil, 2*time.Second).Ask(context.Background(), Choice{Gemini, "key-123"}, "What is Docker Swarm?")
	if err != nil || answer != "Swarm is Docker's orchestrator." {
		t.Fatalf("Ask = %q, %v", answer, err)
	}
	req := fake.only(t)
	if req.method != "POST" || req.path != "/v1beta/models/gemini-test:generateContent" {
		t.Errorf("request = %s %s", req.method, req.path)
	}
	if req.header.Get("x-goog-api-key") != "key-123" || req.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", req.header)
	}
	want := `{"contents":[{"parts":[{"text":"What is Docker Swarm?"}],"role":"user"}]}`
	if got, _ := json.Marshal(req.body); string(got) != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

func TestOpenAISuccessSendsTheContractRequest(t *testing.T) {
	fake := newFakeLLM(t, 200, `{"choices":[{"message":{"role":"assistant","content":"An orchestrator."}}]}`, false)
	answer, err := clientFor(nil, fake, 2*time.Second).Ask(context.Background(), Choice{OpenAI, "okey"}, "What is Docker Swarm?")
	if err != nil || answer != "An orchestrator." {
		t.Fatalf("Ask = %q, %v", answer, err)
	}
	req := fake.only(t)
	if req.method != "POST" || req.path != "/v1/chat/completions" || req.header.Get("Authorization") != "Bearer okey" {
		t.Errorf("request = %s %s auth=%q", req.method, req.path, req.header.Get("Authorization"))
	}
	want := `{"messages":[{"content":"What is Docker Swarm?","role":"user"}],"model":"llama-test"}`
	if got, _ := json.Marshal(req.body); string(got) != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

func TestOpenAIWithoutKeySendsNoAuthorization(t *testing.T) {
	fake := newFakeLLM(t, 200, `{"choices":[{"message":{"content":"ok"}}]}`, false)
	if _, err := clientFor(nil, fake, 2*time.Second).Ask(context.Background(), Choice{OpenAI, ""}, "q"); err != nil {
		t.Fatal(err)
	}
	if auth := fake.only(t).header.Get("Authorization"); auth != "" {
		t.Errorf("Authorization = %q, want none", auth)
	}
}

func TestHTTPErrorsAndTimeoutsBecomeProviderErrors(t *testing.T) {
	const key = "very-secret-key"
	cases := []struct {
		name     string
		provider string
		status   int
		body     string
		hang     bool
		want     string
	}{
		{"gemini 429", Gemini, 429, `{"error":{"message":"quota for ` + key + `"}}`, false, "gemini: HTTP 429"},
		{"gemini 500", Gemini, 500, `oops`, false, "gemini: HTTP 500"},
		{"gemini timeout", Gemini, 0, "", true, "gemini: timeout after 300 ms"},
		{"gemini no answer", Gemini, 200, `{"candidates":[]}`, false, "gemini: response has no candidates"},
		{"openai 429", OpenAI, 429, `{}`, false, "openai: HTTP 429"},
		{"openai 500", OpenAI, 500, `{}`, false, "openai: HTTP 500"},
		{"openai timeout", OpenAI, 0, "", true, "openai: timeout after 300 ms"},
		{"openai no answer", OpenAI, 200, `{"choices":[]}`, false, "openai: response has no choices"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeLLM(t, tc.status, tc.body, tc.hang)
			start := time.Now()
			_, err := clientFor(fake, fake, 300*time.Millisecond).Ask(context.Background(), Choice{tc.provider, key}, "q")
			var perr *Error
			if !errors.As(err, &perr) || err.Error() != tc.want {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error leaks the key: %v", err)
			}
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("took %v, the timeout is 300 ms", elapsed)
			}
		})
	}
}

func TestUnreachableServerIsAnErrorWithoutURL(t *testing.T) {
	fake := newFakeLLM(t, 200, geminiOK, false)
	c := clientFor(fake, nil, time.Second)
	c.GeminiBaseURL = "http://user:pw-secret@" + fake.Listener.Addr().String()
	fake.Close() // nothing listens any more
	_, err := c.Ask(context.Background(), Choice{Gemini, "k"}, "q")
	if err == nil || !strings.HasPrefix(err.Error(), "gemini: request failed") || strings.Contains(err.Error(), "pw-secret") {
		t.Errorf("error = %v", err)
	}
}

func TestGeminiWithoutAnyKeyFailsWithoutCalling(t *testing.T) {
	fake := newFakeLLM(t, 200, geminiOK, false)
	_, err := clientFor(fake, nil, time.Second).Ask(context.Background(), Choice{Gemini, ""}, "q")
	if err == nil || !strings.HasPrefix(err.Error(), "gemini: no API key") {
		t.Errorf("error = %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.requests) != 0 {
		t.Errorf("server was called %d times", len(fake.requests))
	}
}
