// Password-file lines for Mosquitto and the registry, computed in TypeScript so
// no tool is needed on the nodes and plain passwords never leave Pulumi.
//
// Salts are derived from the password (HMAC) rather than random: a random salt
// would change the file on every `pulumi up` and restart the broker and the
// registry for nothing. A per-password salt still defeats precomputed tables;
// the passwords themselves are long random strings or operator secrets.
import { createHmac, pbkdf2Sync } from "node:crypto";
import * as bcrypt from "bcryptjs";

/** Mosquitto 2's PBKDF2-SHA512 format ($7$), as written by `mosquitto_passwd`. */
export const MOSQUITTO_ITERATIONS = 101;
const MOSQUITTO_SALT_BYTES = 12;
const MOSQUITTO_HASH_BYTES = 64;

const BCRYPT_COST = 10;
const BCRYPT_SALT_BYTES = 16;

function derivedSalt(purpose: string, username: string, password: string, bytes: number): Buffer {
  return createHmac("sha256", password).update(`ai-swarm ${purpose} salt for ${username}`).digest().subarray(0, bytes);
}

/** One `user:$7$iterations$salt$hash` line of a mosquitto password file. */
export function mosquittoPasswordLine(username: string, password: string): string {
  const salt = derivedSalt("mosquitto", username, password, MOSQUITTO_SALT_BYTES);
  const hash = pbkdf2Sync(password, salt, MOSQUITTO_ITERATIONS, MOSQUITTO_HASH_BYTES, "sha512");
  return `${username}:$7$${MOSQUITTO_ITERATIONS}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** One `user:$2b$…` bcrypt line of an htpasswd file (the only format the registry accepts). */
export function htpasswdLine(username: string, password: string): string {
  const salt = derivedSalt("registry", username, password, BCRYPT_SALT_BYTES);
  const saltString = `$2b$${BCRYPT_COST}$${bcrypt.encodeBase64([...salt], BCRYPT_SALT_BYTES)}`;
  return `${username}:${bcrypt.hashSync(password, saltString)}`;
}
