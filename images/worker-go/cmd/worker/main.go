// Command worker is the Go worker of ai-swarm. It is configured by the
// environment variables of docs/protocol.md ("Worker environment").
//
//	worker               run the worker (SIGTERM: graceful stop, exit 0)
//	worker -healthcheck  exit 0 if HEALTH_FILE is fresh, 1 otherwise
//
// Exit codes: 0 after a clean stop, 1 when the worker cannot be set up, 2 on
// bad configuration (the message names the variable).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/config"
	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/worker"
)

const (
	exitFailure = 1
	exitConfig  = 2
)

func main() {
	healthcheck := flag.Bool("healthcheck", false, "exit 0 if HEALTH_FILE is fresh, 1 otherwise")
	flag.Parse()
	if *healthcheck {
		os.Exit(checkHealth())
	}
	os.Exit(run())
}

func run() int {
	hostname, _ := os.Hostname()
	cfg, err := config.Load(os.LookupEnv, os.ReadFile, hostname)
	if err != nil {
		// One line per problem, as every worker language prints them (docs/protocol.md).
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "config error: %s\n", line)
		}
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).
		With("worker_id", cfg.WorkerID)

	w, err := worker.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		if errors.Is(err, worker.ErrConfig) {
			return exitConfig
		}
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	w.Run(ctx)
	return 0
}

// checkHealth backs the image's HEALTHCHECK (the final image has no shell).
func checkHealth() int {
	path, heartbeat, err := config.HealthSettings(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "healthcheck: bad configuration: %v\n", err)
		return exitFailure
	}
	if err := worker.CheckHealth(path, time.Now(), worker.HealthMaxAge(heartbeat)); err != nil {
		fmt.Fprintf(os.Stderr, "unhealthy: %v\n", err)
		return exitFailure
	}
	return 0
}
