package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHealthFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker.health")
	now := time.UnixMilli(1764355200000)
	if err := CheckHealth(path, now, time.Minute); err == nil {
		t.Error("a missing file is healthy")
	}
	if err := WriteHealth(path, now); err != nil {
		t.Fatal(err)
	}
	if err := CheckHealth(path, now.Add(14*time.Second), 15*time.Second); err != nil {
		t.Errorf("fresh file unhealthy: %v", err)
	}
	if err := CheckHealth(path, now.Add(16*time.Second), 15*time.Second); err == nil {
		t.Error("stale file is healthy")
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckHealth(path, now, time.Minute); err == nil {
		t.Error("garbage file is healthy")
	}
}

func TestHealthMaxAge(t *testing.T) {
	if got := HealthMaxAge(2 * time.Second); got != 15*time.Second {
		t.Errorf("HealthMaxAge(2s) = %v, want the 15 s floor", got)
	}
	if got := HealthMaxAge(10 * time.Second); got != 30*time.Second {
		t.Errorf("HealthMaxAge(10s) = %v, want 3 heartbeats", got)
	}
}
