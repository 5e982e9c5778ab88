// A self-signed certificate for 127.0.0.1 made with the openssl CLI, for the
// HTTPS tests (the client trusts exactly this certificate).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export function opensslMissing(): string | undefined {
  return spawnSync("openssl", ["version"]).error === undefined ? undefined : "openssl is not installed";
}

export function makeCertificate(dir: string, name = "web"): TestCertificate {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const result = spawnSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", keyFile, "-out", certFile,
    ],
    { encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr}`);
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}
