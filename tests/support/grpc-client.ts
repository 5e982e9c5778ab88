import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { REPO_ROOT } from "../../launch/system";

const PROTO = path.join(REPO_ROOT, "proto/aiswarm/v1/worker_callback.proto");

export interface CallOutcome {
  code: grpc.status;
  details: string;
  response?: Record<string, unknown>;
}

type UnaryMethod = (
  request: Record<string, unknown>,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Record<string, unknown>) => void,
) => void;

/** A WorkerCallback client built from the one proto, as a worker would use it. */
export class CallbackClient {
  private readonly client: grpc.Client & Record<string, UnaryMethod>;

  constructor(address: string) {
    const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      aiswarm: { v1: { WorkerCallback: grpc.ServiceClientConstructor } };
    };
    const Constructor = loaded.aiswarm.v1.WorkerCallback;
    this.client = new Constructor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, UnaryMethod>;
  }

  call(method: "SendResult" | "GetTaskCredential", request: Record<string, unknown>, token: string | undefined): Promise<CallOutcome> {
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
    const fn = this.client[method];
    if (fn === undefined) throw new Error(`no method ${method}`);
    return new Promise((resolve) => {
      fn.call(this.client, request, metadata, { deadline: Date.now() + 5_000 }, (error, response) => {
        if (error) resolve({ code: error.code, details: error.details });
        else resolve({ code: grpc.status.OK, details: "", response });
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
