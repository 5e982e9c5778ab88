// Validation of a submitted query, shared by REST and Socket.IO so both give the
// same answers. Pure: no I/O.

export const MAX_API_KEY_CHARS = 512;

export interface QueryInput {
  query: string;
  apiKey?: string;
}

export type InputResult = { ok: true; value: QueryInput } | { ok: false; error: string };

export function validateQueryInput(body: unknown, maxQueryChars: number): InputResult {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, error: "body must be a JSON object like {\"query\": \"...\"}" };
  }
  const { query, apiKey } = body as Record<string, unknown>;
  if (query === undefined || query === null) return { ok: false, error: "query is required" };
  if (typeof query !== "string") return { ok: false, error: "query must be a string" };
  if (query.trim() === "") return { ok: false, error: "query is empty" };
  if (query.length > maxQueryChars) {
    return {
      ok: false,
      error: `query is too long: ${query.length} characters, the limit is ${maxQueryChars}`,
    };
  }
  if (apiKey === undefined || apiKey === null || apiKey === "") return { ok: true, value: { query } };
  // The key itself is never echoed in an error.
  if (typeof apiKey !== "string") return { ok: false, error: "apiKey must be a string" };
  if (apiKey.length > MAX_API_KEY_CHARS) {
    return { ok: false, error: `apiKey is too long (limit ${MAX_API_KEY_CHARS} characters)` };
  }
  return { ok: true, value: { query, apiKey } };
}

/** A session id from a header or handshake: short and printable, else unusable. */
export function cleanSessionId(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  return /^[A-Za-z0-9_.:-]{1,128}$/.test(value) ? value : undefined;
}
