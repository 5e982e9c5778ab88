// Package provider chooses an LLM for a task and asks it: Gemini over its REST
// generateContent API, any OpenAI-compatible chat/completions endpoint, or the
// offline answer. Base URLs are configurable so tests run this exact code
// against fake servers on 127.0.0.1.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Names reported in results and registration.
const (
	Gemini  = "gemini"
	OpenAI  = "openai"
	Offline = "offline"
)

// Modes of LLM_PROVIDER.
const (
	ModeAuto    = "auto"
	ModeGemini  = "gemini"
	ModeOpenAI  = "openai"
	ModeOffline = "offline"
)

// Keys is what the worker knows when a task arrives.
type Keys struct {
	User          string // the per-query user key, "" when none
	ServerGemini  string // GEMINI_API_KEY
	ServerOpenAI  string // OPENAI_API_KEY
	OpenAIBaseURL string // OPENAI_BASE_URL, "" when unset
}

// Choice is the provider for one task and the key to call it with.
type Choice struct {
	Provider string
	Key      string
}

// Choose applies the rules of docs/protocol.md "Providers".
func Choose(mode string, k Keys) Choice {
	switch mode {
	case ModeGemini:
		return Choice{Gemini, firstSet(k.User, k.ServerGemini)}
	case ModeOpenAI:
		return Choice{OpenAI, firstSet(k.User, k.ServerOpenAI)}
	case ModeOffline:
		return Choice{Offline, ""}
	}
	switch { // auto
	case k.User != "":
		return Choice{Gemini, k.User}
	case k.ServerGemini != "":
		return Choice{Gemini, k.ServerGemini}
	case k.OpenAIBaseURL != "":
		return Choice{OpenAI, k.ServerOpenAI}
	}
	return Choice{Offline, ""}
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// Error is a provider failure. Its text names the provider and the reason
// ("gemini: HTTP 429") and never a key or the response body.
type Error struct {
	Provider string
	Reason   string
}

func (e *Error) Error() string { return e.Provider + ": " + e.Reason }

// maxResponseBytes bounds how much of a provider answer is read.
const maxResponseBytes = 4 << 20

// Client asks the configured providers.
type Client struct {
	HTTP          *http.Client
	GeminiBaseURL string
	GeminiModel   string
	OpenAIBaseURL string
	OpenAIModel   string
	Timeout       time.Duration // LLM_TIMEOUT_MS, for one call
	WorkerID      string        // named in the offline answer
}

// Ask sends query to the chosen provider and returns its answer.
func (c *Client) Ask(ctx context.Context, choice Choice, query string) (string, error) {
	switch choice.Provider {
	case Gemini:
		return c.askGemini(ctx, choice.Key, query)
	case OpenAI:
		return c.askOpenAI(ctx, choice.Key, query)
	default:
		return OfflineAnswer(c.WorkerID, query), nil
	}
}

// OfflineAnswer is the contract's offline answer, word for word
// (docs/protocol.md, Providers).
func OfflineAnswer(workerID, query string) string {
	return fmt.Sprintf("[offline] No LLM is configured on worker %s, so this is not a real answer "+
		"(set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: %s", workerID, query)
}

type geminiRequest struct {
	Contents []geminiContent `json:"contents"`
}

type geminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []geminiPart `json:"parts"`
}

type geminiPart struct {
	Text string `json:"text"`
}

type geminiResponse struct {
	Candidates []struct {
		Content geminiContent `json:"content"`
	} `json:"candidates"`
}

func (c *Client) askGemini(ctx context.Context, key, query string) (string, error) {
	if key == "" {
		return "", &Error{Gemini, "no API key configured (GEMINI_API_KEY or a per-query key)"}
	}
	endpoint := c.GeminiBaseURL + "/v1beta/models/" + url.PathEscape(c.GeminiModel) + ":generateContent"
	body := geminiRequest{Contents: []geminiContent{{Role: "user", Parts: []geminiPart{{Text: query}}}}}
	headers := map[string]string{"x-goog-api-key": key}
	data, err := c.post(ctx, Gemini, endpoint, headers, body)
	if err != nil {
		return "", err
	}
	return ParseGeminiAnswer(data)
}

// ParseGeminiAnswer concatenates candidates[0].content.parts[*].text.
func ParseGeminiAnswer(data []byte) (string, error) {
	var resp geminiResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return "", &Error{Gemini, "response is not valid JSON"}
	}
	if len(resp.Candidates) == 0 {
		return "", &Error{Gemini, "response has no candidates"}
	}
	var answer strings.Builder
	for _, part := range resp.Candidates[0].Content.Parts {
		answer.WriteString(part.Text)
	}
	if answer.Len() == 0 {
		return "", &Error{Gemini, "response has no answer text"}
	}
	return answer.String(), nil
}

type openAIRequest struct {
	Model    string          `json:"model"`
	Messages []openAIMessage `json:"messages"`
}

type openAIMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type openAIResponse struct {
	Choices []struct {
		Message openAIMessage `json:"message"`
	} `json:"choices"`
}

func (c *Client) askOpenAI(ctx context.Context, key, query string) (string, error) {
	if c.OpenAIBaseURL == "" {
		return "", &Error{OpenAI, "no endpoint configured (OPENAI_BASE_URL)"}
	}
	body := openAIRequest{Model: c.OpenAIModel, Messages: []openAIMessage{{Role: "user", Content: query}}}
	headers := map[string]string{}
	if key != "" {
		headers["Authorization"] = "Bearer " + key
	}
	data, err := c.post(ctx, OpenAI, c.OpenAIBaseURL+"/chat/completions", headers, body)
	if err != nil {
		return "", err
	}
	return ParseOpenAIAnswer(data)
}

// ParseOpenAIAnswer returns choices[0].message.content.
func ParseOpenAIAnswer(data []byte) (string, error) {
	var resp openAIResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return "", &Error{OpenAI, "response is not valid JSON"}
	}
	if len(resp.Choices) == 0 {
		return "", &Error{OpenAI, "response has no choices"}
	}
	if resp.Choices[0].Message.Content == "" {
		return "", &Error{OpenAI, "response has no answer text"}
	}
	return resp.Choices[0].Message.Content, nil
}

// post sends a JSON body and returns the 2xx response body. Every failure is
// an *Error naming the provider; none carries the key, the URL or the body.
func (c *Client) post(ctx context.Context, provider, endpoint string, headers map[string]string, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &Error{provider, "cannot encode request"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, &Error{provider, "bad endpoint URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	for name, value := range headers {
		req.Header.Set(name, value)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, provider, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &Error{provider, fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, c.transportError(ctx, provider, err)
	}
	return data, nil
}

// transportError describes a failed request without the URL (url.Error would
// print it) so nothing configured in it can leak.
func (c *Client) transportError(ctx context.Context, provider string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{provider, fmt.Sprintf("timeout after %d ms", c.Timeout.Milliseconds())}
	}
	if ctx.Err() != nil {
		return &Error{provider, "request cancelled"}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return &Error{provider, "request failed: " + err.Error()}
}
