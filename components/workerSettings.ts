// The worker settings table (proto/worker-settings.json), checked once here for every reader:
// the generator of the workers' settings code and docs (scripts/worker-settings.ts) and the
// stack config (components/config.ts), which holds the deployed timings to the table's rules.
//
// Pure: `parseSettingsTable`, `settingByName`, `timingRuleProblems`.
import { z } from "zod";
import tableJson from "../proto/worker-settings.json";

const name = z.string().regex(/^[A-Z][A-Z0-9_]*$/, "must be an UPPER_SNAKE variable name");
const integerBounds = { min: z.number().int(), max: z.number().int().max(2_147_483_647) };

const common = { name, meaning: z.string().min(1) };

const settingSchema = z.discriminatedUnion("type", [
  z.strictObject({
    ...common,
    type: z.literal("string"),
    default: z.string().nullable(),
    default_doc: z.string().optional(),
    required: z.boolean().optional(),
    pattern: z.string().optional(),
    rule: z.string().optional(),
    trim_trailing_slash: z.boolean().optional(),
    required_when: z.strictObject({ name, value: z.string() }).optional(),
  }),
  z.strictObject({ ...common, type: z.literal("integer"), default: z.number().int(), ...integerBounds }),
  z.strictObject({ ...common, type: z.literal("boolean"), default: z.boolean() }),
  z.strictObject({
    ...common,
    type: z.literal("choice"),
    default: z.string(),
    values: z.array(z.string().min(1)).min(2),
    ignore_case: z.boolean().optional(),
  }),
  z.strictObject({ ...common, type: z.literal("file"), default: z.null() }),
  z.strictObject({ ...common, type: z.literal("secret"), required: z.boolean().optional() }),
]);

const timingSchema = z.strictObject({ ...common, type: z.literal("integer"), default: z.number().int(), ...integerBounds });

const ruleSchema = z.strictObject({
  setting: name,
  at_least: z.array(z.tuple([z.number().int().min(1), name])).min(1),
  why: z.string().min(1),
});

const MESSAGE_KINDS = [
  "integer", "boolean", "choice", "pattern", "file", "file_unreadable", "file_empty",
  "required", "required_secret", "required_when",
] as const;

const tableSchema = z.strictObject({
  $comment: z.array(z.string()),
  messages: z.strictObject(Object.fromEntries(MESSAGE_KINDS.map((kind) => [kind, z.string().min(1)])) as Record<(typeof MESSAGE_KINDS)[number], z.ZodString>),
  booleans: z.strictObject({ true: z.array(z.string().min(1)).min(1), false: z.array(z.string().min(1)).min(1) }),
  settings: z.array(settingSchema).min(1),
  master_timings: z.array(timingSchema),
  rules: z.array(ruleSchema),
});

export type SettingsTable = z.infer<typeof tableSchema>;
export type Setting = SettingsTable["settings"][number];
export type TimingSetting = SettingsTable["master_timings"][number];
export type TimingRule = SettingsTable["rules"][number];

/**
 * Validates a table: its shape, then what the shape cannot say (unique names, defaults that
 * obey their own rules, rules over integer settings only, a pattern only with its rule text).
 * Every problem is listed; throws when there is any.
 */
export function parseSettingsTable(input: unknown): SettingsTable {
  const parsed = tableSchema.safeParse(input);
  if (!parsed.success) {
    throw new Error(`proto/worker-settings.json: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const table = parsed.data;
  const problems: string[] = [];
  const all = [...table.settings, ...table.master_timings];
  const seen = new Set<string>();
  for (const setting of all) {
    if (seen.has(setting.name)) problems.push(`${setting.name}: listed twice`);
    seen.add(setting.name);
    if (setting.type === "integer" && (setting.default < setting.min || setting.default > setting.max || setting.min > setting.max)) {
      problems.push(`${setting.name}: default ${setting.default} is outside ${setting.min}..${setting.max}`);
    }
    if (setting.type === "choice" && !setting.values.includes(setting.default)) {
      problems.push(`${setting.name}: default ${setting.default} is not one of its values`);
    }
    if (setting.type === "string") {
      if ((setting.pattern === undefined) !== (setting.rule === undefined)) problems.push(`${setting.name}: pattern and rule go together`);
      if (setting.pattern !== undefined && setting.default !== null && !new RegExp(`^(?:${setting.pattern})$`).test(setting.default)) {
        problems.push(`${setting.name}: default ${setting.default} does not match its pattern`);
      }
      if (setting.default === null && setting.required === true && setting.default_doc === undefined) {
        problems.push(`${setting.name}: a required setting without a default needs default_doc (where its value comes from)`);
      }
      const when = setting.required_when;
      if (when !== undefined) {
        const other = table.settings.find((s) => s.name === when.name);
        if (other?.type !== "choice" || !other.values.includes(when.value)) {
          problems.push(`${setting.name}: required_when names ${when.name}=${when.value}, which is no value of a choice setting`);
        } else if (table.settings.indexOf(other) > table.settings.indexOf(setting)) {
          problems.push(`${setting.name}: required_when names ${when.name}, which must come before it`);
        }
      }
    }
  }
  const integers = new Set(all.filter((s) => s.type === "integer").map((s) => s.name));
  for (const rule of table.rules) {
    for (const used of [rule.setting, ...rule.at_least.map(([, other]) => other)]) {
      if (!integers.has(used)) problems.push(`rules: ${used} is not an integer setting of the table`);
    }
  }
  if (problems.length > 0) throw new Error(`proto/worker-settings.json: ${problems.join("; ")}`);
  return table;
}

export const WORKER_SETTINGS: SettingsTable = parseSettingsTable(tableJson);

/** The integer setting (worker or master timing) called `settingName`; throws for any other name. */
export function integerSetting(settingName: string, table: SettingsTable = WORKER_SETTINGS): TimingSetting {
  const found = [...table.settings, ...table.master_timings].find((s) => s.name === settingName);
  if (found?.type !== "integer") throw new Error(`${settingName} is not an integer setting of proto/worker-settings.json`);
  return found;
}

/** The table's defaults of these integer settings as environment variables ("7000"), e.g. to undo a test's shortened timings. */
export function defaultsAsEnv(...variables: string[]): Record<string, string> {
  return Object.fromEntries(variables.map((variable) => [variable, String(integerSetting(variable).default)]));
}

/** A rule's right side: "3 × HEARTBEAT_INTERVAL_MS", "SIMULATED_WORK_MS + LLM_TIMEOUT_MS". */
export function describeAtLeast(rule: TimingRule, label: (settingName: string) => string = (n) => n): string {
  return rule.at_least.map(([factor, other]) => (factor === 1 ? label(other) : `${factor} × ${label(other)}`)).join(" + ");
}

export interface TimingViolation {
  rule: TimingRule;
  /** The value the rule's setting has and the least it must have. */
  actual: number;
  least: number;
}

/**
 * The rules of the table broken by these values. `value` gives each setting's effective value
 * (a set value or the default). Pure.
 */
export function timingRuleProblems(value: (settingName: string) => number, table: SettingsTable = WORKER_SETTINGS): TimingViolation[] {
  const broken: TimingViolation[] = [];
  for (const rule of table.rules) {
    const least = rule.at_least.reduce((sum, [factor, other]) => sum + factor * value(other), 0);
    const actual = value(rule.setting);
    if (actual < least) broken.push({ rule, actual, least });
  }
  return broken;
}
