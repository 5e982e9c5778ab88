// The worker settings table (proto/worker-settings.json) and what is generated from it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import tableJson from "../../proto/worker-settings.json";
import { defaultsAsEnv, integerSetting, parseSettingsTable, timingRuleProblems, WORKER_SETTINGS } from "../../components/workerSettings";
import { DOC_BEGIN, DOC_END, GENERATED_PATHS, generatedFiles, staleFiles, withProtocolTable } from "../../scripts/worker-settings";

const root = path.resolve(__dirname, "../..");

describe("generated worker settings", () => {
  it("every committed copy (Go, Python, Java, docs/protocol.md) is what the generator makes from the table", () => {
    expect(staleFiles(root)).toEqual([]);
  });

  it("a table edit makes every copy stale", () => {
    const edited = parseSettingsTable({
      ...tableJson,
      settings: tableJson.settings.map((s) => (s.name === "HEARTBEAT_INTERVAL_MS" ? { ...s, default: 2500 } : s)),
    });
    expect(staleFiles(root, edited)).toEqual(GENERATED_PATHS);
    const go = generatedFiles(edited, `${DOC_BEGIN}\n${DOC_END}`).get("images/worker-go/internal/config/settings_gen.go");
    expect(go).toContain(`{name: "HEARTBEAT_INTERVAL_MS", kind: "integer", def: "2500"`);
  });

  it("the docs table sits between its markers and the text around it is kept", () => {
    const doc = `before\n${DOC_BEGIN}\nstale\n${DOC_END}\nafter\n`;
    const out = withProtocolTable(doc, WORKER_SETTINGS);
    expect(out.startsWith(`before\n${DOC_BEGIN}\n| variable |`)).toBe(true);
    expect(out.endsWith(`${DOC_END}\nafter\n`)).toBe(true);
    expect(out).not.toContain("stale");
    expect(() => withProtocolTable("no markers", WORKER_SETTINGS)).toThrow(/markers/);
  });

  it("the check names a generated file edited by hand, and nothing when all match", () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "worker-settings-"));
    try {
      for (const file of GENERATED_PATHS) {
        fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
        fs.copyFileSync(path.join(root, file), path.join(copy, file));
      }
      expect(staleFiles(copy)).toEqual([]);
      const python = "images/worker-python/src/aiswarm_worker/settings_gen.py";
      fs.appendFileSync(path.join(copy, python), "# hand edit\n");
      expect(staleFiles(copy)).toEqual([python]);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe("the settings table is checked before anything is generated from it", () => {
  const broken = (change: (t: typeof tableJson) => unknown) => () => parseSettingsTable(change(structuredClone(tableJson)));

  it("refuses a default outside its bounds, a duplicate, a rule over an unknown setting, a stray field", () => {
    expect(broken((t) => ({ ...t, settings: t.settings.map((s) => (s.name === "MQTT_PORT" ? { ...s, default: 0 } : s)) }))).toThrow(/MQTT_PORT: default 0 is outside 1..65535/);
    expect(broken((t) => ({ ...t, settings: [...t.settings, t.settings[0]] }))).toThrow(/WORKER_ID: listed twice/);
    expect(broken((t) => ({ ...t, rules: [{ setting: "NOPE_MS", at_least: [[1, "LEASE_MS"]], why: "x" }] }))).toThrow(/NOPE_MS is not an integer setting/);
    expect(broken((t) => ({ ...t, settings: t.settings.map((s) => (s.name === "MQTT_HOST" ? { ...s, colour: "red" } : s)) }))).toThrow(/colour/);
    expect(broken((t) => ({ ...t, settings: t.settings.map((s) => (s.name === "GEMINI_MODEL" ? { ...s, default: "two words" } : s)) }))).toThrow(/GEMINI_MODEL: default two words does not match its pattern/);
  });

  it("evaluates the timing rules: the defaults fit, a heartbeat too slow for the timeout does not", () => {
    const defaults = (name: string) => integerSetting(name).default;
    expect(timingRuleProblems(defaults)).toEqual([]);
    const timeout = defaults("HEARTBEAT_TIMEOUT_MS");
    const interval = Math.floor(timeout / 3) + 1; // the first interval the timeout no longer covers three times
    const slow = timingRuleProblems((name) => (name === "HEARTBEAT_INTERVAL_MS" ? interval : defaults(name)));
    expect(slow.map((v) => [v.rule.setting, v.actual, v.least])).toEqual([["HEARTBEAT_TIMEOUT_MS", timeout, 3 * interval]]);
  });

  it("gives integer defaults as environment values and refuses a name that is not an integer setting", () => {
    const lease = tableJson.master_timings.find((s) => s.name === "LEASE_MS")?.default;
    const interval = tableJson.settings.find((s) => s.name === "HEARTBEAT_INTERVAL_MS")?.default;
    expect(defaultsAsEnv("LEASE_MS", "HEARTBEAT_INTERVAL_MS")).toEqual({ LEASE_MS: String(lease), HEARTBEAT_INTERVAL_MS: String(interval) });
    expect(() => defaultsAsEnv("LOG_LEVEL")).toThrow(/LOG_LEVEL is not an integer setting/);
  });
});
