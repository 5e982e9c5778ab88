package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WriteHealth records now (Unix ms) in path. It writes a temp file and renames
// it, so a healthcheck never reads a half-written file.
func WriteHealth(path string, now time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".health-*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(strconv.FormatInt(now.UnixMilli(), 10) + "\n")
	if err == nil {
		err = tmp.Chmod(0o644) // CreateTemp makes 0600; let other users (an operator) read it
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// HealthMaxAge is how old the health file may be: three heartbeats, but never
// less than 15 s, so a loaded machine does not restart healthy workers.
func HealthMaxAge(heartbeat time.Duration) time.Duration {
	return max(3*heartbeat, 15*time.Second)
}

// CheckHealth fails unless path holds a time no older than maxAge.
func CheckHealth(path string, now time.Time, maxAge time.Duration) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("health file: %w", err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return fmt.Errorf("health file %s does not hold a time in ms", path)
	}
	if age := now.Sub(time.UnixMilli(ms)); age > maxAge {
		return fmt.Errorf("health file is %v old, more than %v", age.Round(time.Millisecond), maxAge)
	}
	return nil
}
