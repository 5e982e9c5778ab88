package main

// `worker -healthcheck` is the Go image's HEALTHCHECK (its final image has no
// shell): what it decides is tested here, in-process. Everything the worker
// does as a process is tested once for all languages by tests/conformance.

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestCheckHealth(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, at time.Time) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strconv.FormatInt(at.UnixMilli(), 10)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name, file, heartbeat string
		want                  int
	}{
		{"fresh", write("fresh", time.Now()), "200", 0},
		{"missing", filepath.Join(dir, "missing"), "200", exitFailure},
		{"a minute old", write("stale", time.Now().Add(-time.Minute)), "200", exitFailure},
		{"bad HEARTBEAT_INTERVAL_MS", write("fresh2", time.Now()), "soon", exitFailure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HEALTH_FILE", tc.file)
			t.Setenv("HEARTBEAT_INTERVAL_MS", tc.heartbeat)
			if got := checkHealth(); got != tc.want {
				t.Errorf("checkHealth() = %d, want %d", got, tc.want)
			}
		})
	}
}
