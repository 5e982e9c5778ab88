// What the QueryService suites feed it and read from it, without MQTT.
import type { RegisterMsg } from "../../src/protocol";
import type { TaskPublisher } from "../../src/queryService";

/** A publisher that records the task id of every task message, in order. */
export class TaskIdPublisher implements TaskPublisher {
  connected = true;
  readonly sent: string[] = [];
  publish(_topic: string, payload: string): void {
    this.sent.push((JSON.parse(payload) as { task_id: string }).task_id);
  }
}

/** A register message of a Go worker on vm1. */
export const register = (id: string): RegisterMsg => ({ v: 1, type: "register", worker_id: id, language: "go", node: "vm1", provider: "offline", ts: 0 });
