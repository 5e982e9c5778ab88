// Response headers every answer of the web port carries (the page, the API,
// errors and Socket.IO's own responses), and the same-origin rule for requests
// that change something.
import type { IncomingMessage, ServerResponse } from "node:http";

/** The page loads only its own files: no inline script or style, no framing, no plugins. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function securityHeaders(tls: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  };
  // Browsers ignore HSTS on plain HTTP, so it is sent only where it means something.
  if (tls) headers["strict-transport-security"] = "max-age=31536000";
  return headers;
}

export function setSecurityHeaders(res: ServerResponse, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
}

/**
 * True unless the request carries an `Origin` that is not its own
 * (`http(s)://<Host>`). Browsers send Origin on cross-site requests; curl and
 * the benchmark send none and pass.
 */
export function sameOrigin(req: IncomingMessage, tls: boolean): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  return host !== undefined && origin.toLowerCase() === `${tls ? "https" : "http"}://${host}`.toLowerCase();
}
