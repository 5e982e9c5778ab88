import { defineConfig } from "vitest/config";

// Unit and process-level tests of the master. The end-to-end file starts a real
// Mosquitto and the built dist/main.js, so files run one at a time on 2 cores.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
