import { defineConfig } from "vitest/config";

// Root test suite: the Pulumi program (tests/pulumi), the integration and
// conformance suites (tests/integration, tests/conformance) and the browser test.
// Each service folder under images/ has its own unit tests in its own language.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // The live end-to-end suite builds a 4-VM lab: it runs on its own (npm run test:e2e).
    exclude: ["tests/e2e/**", "**/node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real brokers and processes: keep files serial
    // on this 2-core machine so timings stay meaningful.
    fileParallelism: false,
  },
});
