import mqtt, { type MqttClient } from "mqtt";

/** How a test client reaches a broker that wants TLS (trusting `ca`) and/or a user name and password. */
export interface MqttAccess {
  ca?: string;
  username?: string;
  password?: string;
}

/** A test's MQTT client on the loopback broker at `port` (mqtts when access.ca is given). */
export function connectMqtt(port: number, clientId: string, access: MqttAccess = {}): Promise<MqttClient> {
  const scheme = access.ca === undefined ? "mqtt" : "mqtts";
  return mqtt.connectAsync(`${scheme}://127.0.0.1:${port}`, { clientId, reconnectPeriod: 500, ca: access.ca, username: access.username, password: access.password });
}

export interface SeenMessage {
  topic: string;
  payload: string;
  at: number;
}

/** An MQTT client that subscribes to everything and keeps what it sees. */
export class MqttSpy {
  readonly messages: SeenMessage[] = [];

  private constructor(private readonly client: MqttClient) {
    client.on("message", (topic, payload) => {
      this.messages.push({ topic, payload: payload.toString("utf8"), at: Date.now() });
    });
  }

  static async connect(port: number, filter = "#", access: MqttAccess = {}): Promise<MqttSpy> {
    const client = await connectMqtt(port, `spy-${process.pid}-${Date.now()}`, access);
    const spy = new MqttSpy(client);
    await client.subscribeAsync(filter, { qos: 1 });
    return spy;
  }

  async publish(topic: string, payload: string | Buffer): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  /** Parsed JSON payloads on topics matching the regex (unparsable ones skipped). */
  json(topicPattern: RegExp): Record<string, unknown>[] {
    return this.messages
      .filter((m) => topicPattern.test(m.topic))
      .flatMap((m) => {
        try {
          return [JSON.parse(m.payload) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  everythingSeen(): string {
    return this.messages.map((m) => `${m.topic} ${m.payload}`).join("\n");
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
