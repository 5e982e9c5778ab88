// The master's MQTT side: subscribes to the worker topics, validates every
// payload (protocol.ts, against proto/mqtt/payloads.schema.json) and hands good
// ones to the service; publishes tasks at QoS 1. Reconnects forever with
// exponential backoff while the broker is down.
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Config } from "./config";
import { errorMessage, type Logger } from "./log";
import { encodeLog, parseIncoming, topics, type IncomingMsg, type PayloadSchema, type Topics } from "./protocol";
import type { TaskPublisher } from "./queryService";
import { boundedClose, SHUTDOWN_STEP_MS, type StepEnd } from "./shutdown";

const MIN_RECONNECT_MS = 500;
/**
 * At most this long between two attempts while the broker is away. When the broker's VM is lost,
 * Swarm starts Mosquitto on another manager some 20 s later; a longer cap (it was 30 s) added up to
 * that much again before the master saw it (the Go and Java workers cap theirs at 5 s too).
 */
const MAX_RECONNECT_MS = 5_000;

export interface BridgeHandlers {
  message(msg: IncomingMsg): void;
  connected(firstTime: boolean): void;
}

export class MqttBridge implements TaskPublisher {
  readonly topics: Topics;
  private client?: MqttClient;
  private handlers?: BridgeHandlers;
  private everConnected = false;

  constructor(
    private readonly cfg: Config["mqtt"],
    private readonly log: Logger,
    private readonly payloadSchema: PayloadSchema,
    /** Subscribe to P/logs too (only useful when debug lines are printed). */
    private readonly readWorkerLogs = false,
  ) {
    this.topics = topics(cfg.topicPrefix);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  start(handlers: BridgeHandlers): void {
    this.handlers = handlers;
    const protocol = this.cfg.tls ? "mqtts" : "mqtt";
    const options: IClientOptions = {
      clientId: `master-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      username: this.cfg.username,
      password: this.cfg.password,
      ca: this.cfg.caFile ? readFileSync(this.cfg.caFile) : undefined,
      reconnectPeriod: MIN_RECONNECT_MS,
      connectTimeout: 5_000,
      keepalive: 10,
      clean: true,
    };
    const client = mqtt.connect(`${protocol}://${this.cfg.host}:${this.cfg.port}`, options);
    this.client = client;
    client.on("connect", () => this.onConnect(client));
    client.on("reconnect", () => {
      // Exponential backoff: mqtt.js reads reconnectPeriod each time it re-arms.
      client.options.reconnectPeriod = Math.min(
        (client.options.reconnectPeriod ?? MIN_RECONNECT_MS) * 2,
        MAX_RECONNECT_MS,
      );
    });
    client.on("offline", () => this.log.warn("mqtt disconnected; reconnecting", this.where()));
    client.on("error", (err) => this.log.warn("mqtt error", { ...this.where(), error: errorMessage(err) }));
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
  }

  publish(topic: string, payload: string): void {
    this.client?.publish(topic, payload, { qos: 1, retain: false }, (err) => {
      if (err) this.log.warn("mqtt publish failed", { topic, error: errorMessage(err) });
    });
  }

  /** A log event for the cluster-wide logs topic. */
  publishLog(level: "info" | "warn" | "error", message: string, taskId?: string): void {
    if (!this.connected) return;
    this.publish(this.topics.logs, encodeLog({ source: "master", level, message, task_id: taskId, ts: Date.now() }));
  }

  /**
   * Connected: waits (at most `graceMs`) for the broker to acknowledge the
   * tasks in flight, then disconnects. Not connected: nobody to tell, the
   * client just stops. A broker that stops answering without closing the
   * connection would hold the first forever (mqtt.js waits for every
   * acknowledgement): after `graceMs` the connection is dropped.
   */
  async stop(graceMs = SHUTDOWN_STEP_MS): Promise<StepEnd> {
    const client = this.client;
    if (!client) return "closed";
    const graceful = new Promise<void>((resolve) => client.end(!client.connected, {}, () => resolve()));
    return boundedClose(graceful, graceMs, () => client.stream?.destroy());
  }

  private onConnect(client: MqttClient): void {
    client.options.reconnectPeriod = MIN_RECONNECT_MS;
    // Small QoS 1 messages back and forth: Nagle's algorithm would hold each
    // one for up to ~40 ms waiting for the broker's delayed ACK.
    (client.stream as Partial<Socket>).setNoDelay?.(true);
    // Workers publish at QoS 1 (the broker acknowledges them). The master's own
    // subscription is QoS 0: its session is clean, so QoS 1 would add no
    // redelivery after a reconnect, only a PUBACK write per message on the hot path.
    client.subscribe(this.topics.subscriptions(this.readWorkerLogs), { qos: 0 }, (err) => {
      if (err) {
        this.log.error("mqtt subscribe failed", { error: errorMessage(err) });
        return;
      }
      const firstTime = !this.everConnected;
      this.everConnected = true;
      this.log.info("mqtt connected", this.where());
      this.handlers?.connected(firstTime);
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseIncoming(this.payloadSchema, this.topics.prefix, topic, payload);
    if (!parsed.ok) {
      // Never the content: it may be anything, including secrets pasted by mistake.
      this.log.warn("mqtt message dropped", { topic, bytes: payload.byteLength, reason: parsed.reason });
      return;
    }
    try {
      this.handlers?.message(parsed.msg);
    } catch (err) {
      this.log.error("mqtt message handling failed", { topic, error: errorMessage(err) });
    }
  }

  private where(): Record<string, unknown> {
    return { broker: `${this.cfg.host}:${this.cfg.port}`, tls: this.cfg.tls };
  }
}
