package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackoffSchedule(t *testing.T) {
	want := []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000, 5000}
	for attempt, ms := range want {
		if got := ResultBackoff.Delay(attempt); got != ms*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, ms*time.Millisecond)
		}
	}
	if got := ResultBackoff.Delay(1000); got != 5*time.Second {
		t.Errorf("Delay(1000) = %v, want the 5 s cap", got)
	}
}

func TestRetryableCodes(t *testing.T) {
	for code := codes.OK; code <= codes.Unauthenticated; code++ {
		want := code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.ResourceExhausted
		if Retryable(code) != want {
			t.Errorf("Retryable(%v) = %t, want %t", code, !want, want)
		}
	}
}

func TestCodeName(t *testing.T) {
	cases := map[codes.Code]string{
		codes.Unauthenticated: "UNAUTHENTICATED", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.NotFound: "NOT_FOUND", codes.OK: "OK",
		codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	}
	for code, want := range cases {
		if got := CodeName(code); got != want {
			t.Errorf("CodeName(%v) = %q, want %q", code, got, want)
		}
	}
}

func TestRetryStopsOnFinalCode(t *testing.T) {
	calls := 0
	_, err := retry(context.Background(), time.Minute, time.Second, func(context.Context) (int, error) {
		calls++
		return 0, status.Error(codes.Unauthenticated, "no")
	}, func(int, error, time.Duration) { t.Error("a final code was retried") })
	if calls != 1 || status.Code(err) != codes.Unauthenticated {
		t.Errorf("calls=%d err=%v", calls, err)
	}
}

func TestRetryRetriesTransientCodesUntilSuccess(t *testing.T) {
	calls := 0
	var waits []time.Duration
	got, err := retry(context.Background(), time.Minute, time.Second, func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "", status.Error([]codes.Code{codes.Unavailable, codes.ResourceExhausted}[calls-1], "later")
		}
		return "done", nil
	}, func(_ int, _ error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil || got != "done" || calls != 3 {
		t.Fatalf("got=%q err=%v calls=%d", got, err, calls)
	}
	if len(waits) != 2 || waits[0] != 200*time.Millisecond || waits[1] != 400*time.Millisecond {
		t.Errorf("waits = %v, want [200ms 400ms]", waits)
	}
}

func TestRetryGivesUpAtTheDeadline(t *testing.T) {
	start := time.Now()
	calls := 0
	_, err := retry(context.Background(), 500*time.Millisecond, time.Second, func(context.Context) (int, error) {
		calls++
		return 0, status.Error(codes.Unavailable, "down")
	}, func(int, error, time.Duration) {})
	// 0 ms, +200, +400 would start at 600 ms > 500 ms: two calls.
	if status.Code(err) != codes.Unavailable || calls != 2 {
		t.Errorf("calls=%d err=%v", calls, err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v", elapsed)
	}
}

func TestRetryGivesEachCallItsOwnDeadline(t *testing.T) {
	_, err := retry(context.Background(), 0, 50*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, func(int, error, time.Duration) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}
