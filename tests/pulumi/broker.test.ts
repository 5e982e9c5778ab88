// The generated Mosquitto files and password hashes, checked against the real
// things: a real Mosquitto broker (started on a free loopback port with the
// exact mosquitto.conf, ACL and password file the program generates) and an
// independent bcrypt implementation (the system's crypt(3) through Python).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { htpasswdLine, mosquittoPasswordLine } from "../../components/credentials";
import { mosquittoAcl, mosquittoConf } from "../../components/mosquitto";

const PREFIX = "ai-system";
const PASSWORDS = { master: "master-pw-0123456789", "worker-python": "python-pw-0123456789", "worker-go": "go-pw-0123456789" };

function which(binary: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

const mosquittoBinary = which("mosquitto") ?? (fs.existsSync("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : undefined);
if (!mosquittoBinary) console.warn("SKIPPED broker tests: mosquitto is not installed (apt-get install -y mosquitto)");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
    server.on("error", reject);
  });
}

describe("password hashes", () => {
  it("writes mosquitto $7$ lines (PBKDF2-SHA512, 101 rounds) that are stable per password", () => {
    const line = mosquittoPasswordLine("master", "pw-one-123456");
    expect(line).toMatch(/^master:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    expect(mosquittoPasswordLine("master", "pw-one-123456")).toBe(line);
    expect(mosquittoPasswordLine("master", "pw-two-123456")).not.toBe(line);
    expect(line).not.toContain("pw-one-123456");
  });

  it("writes bcrypt htpasswd lines that an independent bcrypt (crypt(3)) verifies", () => {
    const line = htpasswdLine("aiswarm", "registry-pw-123456");
    expect(line).toMatch(/^aiswarm:\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(htpasswdLine("aiswarm", "registry-pw-123456")).toBe(line);
    const hash = line.slice("aiswarm:".length);
    const check = spawnSync(
      "python3",
      ["-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])", "registry-pw-123456", hash],
      { encoding: "utf8" },
    );
    if (check.status !== 0) {
      console.warn(`SKIPPED the crypt(3) cross-check: python3's crypt module is unavailable (${check.stderr.split("\n")[0]})`);
      return;
    }
    expect(check.stdout.trim()).toBe("True");
    const wrong = spawnSync("python3", ["-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])", "wrong", hash], {
      encoding: "utf8",
    });
    expect(wrong.stdout.trim()).toBe("False");
  });
});

describe.skipIf(!mosquittoBinary)("the generated broker config on a real Mosquitto", () => {
  let dir: string;
  let broker: ChildProcess;
  let port: number;
  let brokerLog = "";

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-swarm-broker-"));
    port = await freePort();
    const paths = { passwordFile: path.join(dir, "passwd"), aclFile: path.join(dir, "acl"), dataDir: path.join(dir, "data") + "/" };
    fs.mkdirSync(paths.dataDir);
    // Bind to loopback only: the generated config listens on all interfaces inside its container.
    const conf = mosquittoConf(paths, port).replace(`listener ${port}`, `listener ${port} 127.0.0.1`);
    fs.writeFileSync(path.join(dir, "mosquitto.conf"), conf);
    fs.writeFileSync(paths.aclFile, mosquittoAcl(PREFIX));
    const lines = Object.entries(PASSWORDS).map(([user, password]) => mosquittoPasswordLine(user, password));
    fs.writeFileSync(paths.passwordFile, lines.join("\n") + "\n", { mode: 0o600 });
    // Started as root, mosquitto drops to the "mosquitto" user before reading these files (as in the image).
    if (process.getuid?.() === 0) spawnSync("chown", ["-R", "mosquitto", dir]);
    broker = spawn(mosquittoBinary as string, ["-c", path.join(dir, "mosquitto.conf")], { stdio: ["ignore", "pipe", "pipe"] });
    broker.stdout?.on("data", (chunk: Buffer) => (brokerLog += chunk.toString()));
    broker.stderr?.on("data", (chunk: Buffer) => (brokerLog += chunk.toString()));
    await waitForPort(port);
  });

  afterAll(() => {
    if (broker?.pid) process.kill(broker.pid, "SIGTERM");
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function waitForPort(target: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const open = await new Promise<boolean>((resolve) => {
        const socket = net.connect(target, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
      if (open) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`mosquitto did not listen on ${target}: ${brokerLog}`);
  }

  function connect(username: string, password: string, clientId: string): Promise<mqtt.MqttClient> {
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username, password, clientId, reconnectPeriod: 0, connectTimeout: 3000 });
      client.once("connect", () => resolve(client));
      client.once("error", (error) => {
        client.end(true);
        reject(error);
      });
    });
  }

  /** Publishes as `publisher` and reports whether `subscriber` (subscribed to `filter`) received it. */
  async function delivered(publisher: mqtt.MqttClient, subscriber: mqtt.MqttClient, filter: string, topic: string): Promise<boolean> {
    await subscriber.subscribeAsync(filter, { qos: 1 });
    const marker = `m-${Math.random()}`;
    const received = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 700);
      subscriber.on("message", (incoming, payload) => {
        if (incoming === topic && payload.toString() === marker) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    await publisher.publishAsync(topic, marker, { qos: 1 });
    const result = await received;
    await subscriber.unsubscribeAsync(filter);
    return result;
  }

  it("accepts the generated passwords and refuses a wrong one or none", async () => {
    const master = await connect("master", PASSWORDS.master, "master-1");
    master.end();
    await expect(connect("master", "wrong-password", "master-2")).rejects.toThrow(/Not authorized|Bad user name or password/);
    await expect(connect("worker-go", PASSWORDS["worker-python"], "go-x")).rejects.toThrow(/Not authorized|Bad user name or password/);
  });

  it("lets the master reach a worker's task topic and the worker read only its own", async () => {
    const master = await connect("master", PASSWORDS.master, "master-3");
    const worker = await connect("worker-python", PASSWORDS["worker-python"], "python-vm2-aaaa");
    try {
      expect(await delivered(master, worker, `${PREFIX}/workers/python-vm2-aaaa/tasks`, `${PREFIX}/workers/python-vm2-aaaa/tasks`)).toBe(true);
      // Another worker's tasks: the broker does not deliver them to this client.
      expect(await delivered(master, worker, `${PREFIX}/workers/go-vm3-bbbb/tasks`, `${PREFIX}/workers/go-vm3-bbbb/tasks`)).toBe(false);
    } finally {
      master.end();
      worker.end();
    }
  });

  it("lets a worker publish only on its own topics and the logs", async () => {
    const master = await connect("master", PASSWORDS.master, "master-4");
    const worker = await connect("worker-go", PASSWORDS["worker-go"], "go-vm3-bbbb");
    try {
      expect(await delivered(worker, master, `${PREFIX}/workers/+/register`, `${PREFIX}/workers/go-vm3-bbbb/register`)).toBe(true);
      expect(await delivered(worker, master, `${PREFIX}/logs`, `${PREFIX}/logs`)).toBe(true);
      // Impersonating another worker, or writing outside the prefix, is dropped by the broker.
      expect(await delivered(worker, master, `${PREFIX}/workers/+/status`, `${PREFIX}/workers/python-vm2-aaaa/status`)).toBe(false);
      expect(await delivered(worker, master, `${PREFIX}/#`, `${PREFIX}/control`)).toBe(false);
    } finally {
      master.end();
      worker.end();
    }
  });
});
