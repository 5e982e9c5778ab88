// Query ids: "q_" + a ULID (48-bit time + 80 random bits, Crockford base32), so
// ids sort by creation time and cannot be guessed.
import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_CHARS = 16;

// Random bytes are drawn 4 KiB at a time (from the same CSPRNG) instead of 16
// bytes per id: one call into the crypto library per 256 ids, not one per id.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomChunk(): Buffer {
  if (poolOffset + RANDOM_CHARS > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const chunk = pool.subarray(poolOffset, poolOffset + RANDOM_CHARS);
  poolOffset += RANDOM_CHARS;
  return chunk;
}

export function newQueryId(now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomChunk();
  let random = "";
  for (let i = 0; i < RANDOM_CHARS; i++) random += ALPHABET[(bytes[i] as number) % 32];
  return `q_${time}${random}`;
}
