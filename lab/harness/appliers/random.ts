// random:index:RandomPassword / RandomString — a real random value from
// crypto.randomInt over the character classes the inputs allow, honouring the
// min* counts. Like the random provider, every input (keepers included)
// forces a replacement: a new value. Unchanged inputs keep the stored value.
import * as crypto from "node:crypto";
import bcrypt from "bcryptjs";
import { fieldsOf, InputError, type JsonObject, optBoolean, optNumber, optString } from "../json";
import { inputsDiff } from "../steps";
import type { ResourceKind } from "../types";

const FIELDS = [
  "length", "special", "upper", "lower", "numeric", "number", "minUpper", "minLower", "minNumeric", "minSpecial",
  "overrideSpecial", "keepers",
] as const;

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGITS = "0123456789";
const DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

export interface PasswordRules {
  length: number;
  classes: { chars: string; min: number }[];
}

/** Pure: the provider's rules from the inputs (all classes on by default). */
export function passwordRules(inputs: JsonObject, path: string): PasswordRules {
  const f = fieldsOf(inputs, path, FIELDS);
  const length = optNumber(f, "length", path);
  if (length === undefined || !Number.isInteger(length) || length < 1) throw new InputError(`${path}.length: must be a whole number ≥ 1`);
  const enabled = (key: string) => optBoolean(f, key, path) ?? true;
  const numeric = optBoolean(f, "numeric", path) ?? optBoolean(f, "number", path) ?? true;
  const classes = [
    { on: enabled("upper"), chars: UPPER, min: optNumber(f, "minUpper", path) ?? 0 },
    { on: enabled("lower"), chars: LOWER, min: optNumber(f, "minLower", path) ?? 0 },
    { on: numeric, chars: DIGITS, min: optNumber(f, "minNumeric", path) ?? 0 },
    { on: enabled("special"), chars: optString(f, "overrideSpecial", path) ?? DEFAULT_SPECIAL, min: optNumber(f, "minSpecial", path) ?? 0 },
  ].filter((c) => c.on && c.chars.length > 0);
  if (classes.length === 0) throw new InputError(`${path}: every character class is disabled`);
  const minimum = classes.reduce((sum, c) => sum + c.min, 0);
  if (minimum > length) throw new InputError(`${path}: the min* counts (${minimum}) exceed length ${length}`);
  return { length, classes: classes.map(({ chars, min }) => ({ chars, min })) };
}

/** A random string following `rules`: the minimums first, then any allowed character, shuffled. */
export function generatePassword(rules: PasswordRules): string {
  const chars: string[] = [];
  for (const c of rules.classes) for (let i = 0; i < c.min; i++) chars.push(pick(c.chars));
  const all = rules.classes.map((c) => c.chars).join("");
  while (chars.length < rules.length) chars.push(pick(all));
  for (let i = chars.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j] as string, chars[i] as string];
  }
  return chars.join("");
}

function pick(from: string): string {
  return from[crypto.randomInt(from.length)] as string;
}

export const randomValue: ResourceKind = {
  diff: (prior, req) => inputsDiff(prior.inputs, req.inputs, { replaceOn: "all" }),

  async create(req, ctx) {
    const path = `${req.type} ${req.name}`;
    const result = generatePassword(passwordRules(req.inputs, path));
    const isPassword = req.type === "random:index/randomPassword:RandomPassword";
    const outputs: JsonObject = { ...req.inputs, result };
    if (isPassword) outputs["bcryptHash"] = await bcrypt.hash(result, 10);
    ctx.masker.add(isPassword ? [result] : []);
    return { id: "none", outputs, secretOutputs: isPassword ? ["result", "bcryptHash"] : [...req.secretInputKeys] };
  },
};
