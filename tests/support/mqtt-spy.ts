import mqtt, { type MqttClient } from "mqtt";

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

  static async connect(port: number, filter = "#"): Promise<MqttSpy> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `spy-${process.pid}-${Date.now()}`, reconnectPeriod: 500 });
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
