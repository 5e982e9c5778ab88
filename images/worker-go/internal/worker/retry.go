package worker

import (
	"context"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backoff is the retry schedule of docs/protocol.md, delivery rule 5:
// 200 ms doubling up to 5 s.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// ResultBackoff is the contract's schedule.
var ResultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second}

// Delay is the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Retryable says whether a failed call may succeed if tried again. Every other
// code (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, ...) is final.
func Retryable(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// CodeName gives the canonical upper-case name of a gRPC code, as in the
// contract and in other languages' logs: "UNAUTHENTICATED", "DEADLINE_EXCEEDED".
// (codes.Code.String gives "Unauthenticated".)
func CodeName(code codes.Code) string {
	var b strings.Builder
	prevLower := false
	for _, r := range code.String() {
		if unicode.IsUpper(r) && prevLower {
			b.WriteByte('_')
		}
		prevLower = unicode.IsLower(r)
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// retry calls call until it succeeds, fails with a final code, or the next
// attempt would start after deadline. Each attempt gets callTimeout.
// onRetry is told about every failed attempt that will be retried.
func retry[T any](ctx context.Context, deadline time.Duration, callTimeout time.Duration,
	call func(context.Context) (T, error), onRetry func(attempt int, err error, wait time.Duration)) (T, error) {
	giveUp := time.Now().Add(deadline)
	for attempt := 0; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		result, err := call(callCtx)
		cancel()
		if err == nil || !Retryable(status.Code(err)) {
			return result, err
		}
		wait := ResultBackoff.Delay(attempt)
		if time.Now().Add(wait).After(giveUp) {
			return result, err
		}
		onRetry(attempt, err, wait)
		select {
		case <-ctx.Done():
			return result, err
		case <-time.After(wait):
		}
	}
}
