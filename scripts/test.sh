#!/usr/bin/env bash
# The whole test suite (the README's test command): each service's own tests
# in its own language, the type check, then the repository-level suites
# (Pulumi program under mocks, integration, worker conformance, browser).
# Runs every suite even when one fails, and ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
suite() {
  local name=$1; shift
  printf '\n==> %s\n' "$name"
  local started=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "    $name: ok ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "    $name: FAILED ($((SECONDS - started)) s)"
  fi
}

suite "master unit tests" bash -c 'cd images/master && npm test --silent'
suite "python worker (pytest, mypy)" bash -c 'cd images/worker-python && .venv/bin/pytest -q && .venv/bin/mypy'
suite "go worker (go vet, go test)" bash -c 'cd images/worker-go && go vet ./... && go test ./...'
suite "java worker (mvn test)" bash -c 'cd images/worker-java && mvn -q -B test'
suite "typecheck (tsc strict)" npx tsc --noEmit -p tsconfig.json
suite "repository suites (vitest)" npx vitest run

echo
[ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "suites: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
