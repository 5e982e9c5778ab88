// Query ids: "q_" + a ULID (48-bit time + 80 random bits, Crockford base32), so
// ids sort by creation time and cannot be guessed.
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export function newQueryId(now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let random = "";
  for (let i = 0; i < 16; i++) random += ALPHABET[(bytes[i] as number) % 32];
  return `q_${time}${random}`;
}
