import { defineConfig } from "vitest/config";

// The live end-to-end suite (npm run test:e2e): a fresh 5-VM lab, a real
// deploy, checks against it, teardown. Long steps, one file, strictly in order.
export default defineConfig({
  test: {
    include: ["tests/e2e/**/*.test.ts"],
    testTimeout: 10 * 60_000,
    hookTimeout: 30 * 60_000,
    fileParallelism: false,
    sequence: { concurrent: false },
    // Progress of the lab and the deploy is printed as it happens.
    silent: false,
  },
});
