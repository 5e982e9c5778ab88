//go:build race

package main

// Under `go test -race` the worker binary is built with the race detector too.
func init() { workerBuildFlags = append(workerBuildFlags, "-race") }
