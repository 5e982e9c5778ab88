// The front door of the web page and the REST API: the TLS certificate the
// master serves and the access token it asks for. The master gets both as
// Docker secrets (components/app.ts); users get the token and the CA to trust
// from the stack outputs.
//
// tls "self-signed": a certificate for the manager's address (and web.hosts),
// signed by the stack's own CA — the one the registry's TLS uses, made on the
// manager, whose key never leaves it — kept on the manager and re-issued only
// when the names change. "provided": the certificate and key from the stack
// config. "off": plain HTTP, with a warning on every preview.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { subjectAltName } from "./registry";
import { remoteCommand } from "./remoteCommand";
import { asRoot, webTlsScript } from "./scripts";

export interface WebAccessArgs {
  /** See the config key web.tls. */
  tls: "self-signed" | "provided" | "off";
  /** See the config key web.auth. */
  auth: "token" | "off";
  /** The manager, where a self-signed certificate is made: SSH connection and login user. */
  connection: command.types.input.remote.ConnectionArgs;
  user: string;
  /** Names the page is reached by; the first is the certificate's common name. */
  hosts: string[];
  /** The CA's certificate (public), for users to trust a self-signed certificate. */
  caCert: pulumi.Input<string>;
  /** Makes the CA on the manager: a self-signed certificate is issued after it. */
  caReady: pulumi.Resource;
  /** The token from config (a secret); generated and kept in the stack state when absent. */
  token?: pulumi.Output<string>;
  /** tls "provided": the certificate and its key from config (secrets). */
  certificate?: pulumi.Output<string>;
  privateKey?: pulumi.Output<string>;
  /** The port, for the warnings. */
  port: number;
}

export interface WebTls {
  /** PEM certificate (chain) the master serves. */
  certificate: pulumi.Output<string>;
  /** Its private key (a secret). */
  privateKey: pulumi.Output<string>;
}

export class WebAccess extends pulumi.ComponentResource {
  readonly scheme: "https" | "http";
  /** The certificate and key, unless tls is off. */
  readonly tls?: WebTls;
  /** The access token (a secret), unless auth is off. */
  readonly token?: pulumi.Output<string>;
  /** The CA certificate to trust for a self-signed certificate (public). */
  readonly caCert?: pulumi.Output<string>;

  constructor(name: string, args: WebAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:WebAccess", name, {}, opts);
    this.scheme = args.tls === "off" ? "http" : "https";
    if (args.tls === "off") {
      void pulumi.log.warn(
        `web.tls is off: the page and the API on port ${args.port} are plain HTTP, so API keys typed into the page` +
          `${args.auth === "token" ? " and the access token" : ""} cross the network in clear`,
        this,
      );
    }
    if (args.auth === "off") {
      void pulumi.log.warn(`web.auth is off: anyone who can reach port ${args.port} can use the page and the API, and spend the LLM key`, this);
    }

    if (args.tls === "self-signed") {
      const names = args.hosts.map(subjectAltName).join(",");
      const issued = remoteCommand(
        `${name}-tls`,
        {
          connection: args.connection,
          create: asRoot(webTlsScript(names, args.hosts[0] ?? "localhost"), args.user),
          // It prints the key: never in a log, and a secret in the state.
          logging: "none",
        },
        { parent: this, dependsOn: [args.caReady], additionalSecretOutputs: ["stdout"] },
      );
      const { certificate, privateKey } = splitCertificateAndKey(issued.stdout);
      this.tls = { certificate: pulumi.unsecret(certificate), privateKey: pulumi.secret(privateKey) };
      this.caCert = pulumi.output(args.caCert);
    } else if (args.tls === "provided") {
      if (!args.certificate || !args.privateKey) throw new pulumi.RunError("web.tls provided needs web.certificate and web.privateKey");
      this.tls = { certificate: args.certificate, privateKey: pulumi.secret(args.privateKey) };
    }

    if (args.auth === "token") {
      this.token = pulumi.secret(
        args.token ?? new random.RandomPassword(`${name}-token`, { length: 40, special: false }, { parent: this }).result,
      );
    }
    this.registerOutputs({ scheme: this.scheme, caCert: this.caCert });
  }
}

/** webTlsScript and etcdTlsScript print the certificate, then the key; `what` names the command in the error. */
export function splitCertificateAndKey(
  stdout: pulumi.Output<string>,
  what = "the web certificate command",
): { certificate: pulumi.Output<string>; privateKey: pulumi.Output<string> } {
  const parts = stdout.apply((text) => {
    const at = text.search(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    if (at <= 0 || !text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new Error(`${what} printed no certificate and key (see its stderr on the manager)`);
    }
    return { certificate: `${text.slice(0, at).trim()}\n`, privateKey: `${text.slice(at).trim()}\n` };
  });
  return { certificate: parts.apply((p) => p.certificate), privateKey: parts.apply((p) => p.privateKey) };
}
