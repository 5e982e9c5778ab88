// main.js as a process: a bad configuration stops start-up with exit code 1 and
// a message naming the variable.
import { describe, expect, it } from "vitest";
import { builtMasterExists, MAIN_JS, spawnMaster } from "./helpers/master";

const missing = builtMasterExists() ? undefined : `${MAIN_JS} is missing (run npm run build)`;
if (missing) console.warn(`SKIPPED startup: ${missing}`);

describe.skipIf(missing !== undefined)("start-up with a bad configuration", () => {
  it.each([
    [{ GRPC_TOKEN: "secret-value-1", HTTP_PORT: "abc" }, /HTTP_PORT/],
    [{ GRPC_TOKEN: "secret-value-1", LEASE_MS: "-3" }, /LEASE_MS/],
    [{}, /GRPC_TOKEN: required/],
    [{ GRPC_TOKEN: "secret-value-1", GRPC_TOKEN_FILE: "/nonexistent/token" }, /GRPC_TOKEN_FILE: cannot read file/],
    [{ GRPC_TOKEN: "secret-value-1", WEB_AUTH_TOKEN: "secret-value-1" }, /WEB_AUTH_TOKEN: the token must be at least 16 characters/],
    [{ GRPC_TOKEN: "secret-value-1", WEB_TLS_CERT_FILE: "/nonexistent/web.crt" }, /WEB_TLS_KEY_FILE: required/],
  ])("%j exits 1 naming the variable", async (env, message) => {
    const master = spawnMaster(env);
    expect(await master.exited).toBe(1);
    expect(master.output()).toMatch(message);
    expect(master.output()).not.toContain("secret-value-1");
  });
});
