// The pure spec builders: endpoint modes, provider environment, names.
import { describe, expect, it } from "vitest";
import { endpointSpec, llmEnv, serviceName } from "../../components/specs";
import { managerDockerHost, managerSshOpts } from "../../components/providers";
import { subjectAltName } from "../../components/registry";

describe("endpointSpec", () => {
  const web = [{ name: "web", target: 8888, published: 31663 }];

  it("lab: DNS round-robin with host-mode published ports", () => {
    expect(endpointSpec({ endpointMode: "dnsrr", publishMode: "host" }, web)).toEqual({
      mode: "dnsrr",
      ports: [{ name: "web", protocol: "tcp", targetPort: 8888, publishedPort: 31663, publishMode: "host" }],
    });
  });

  it("real clusters: VIP with the ingress routing mesh", () => {
    const spec = endpointSpec({ endpointMode: "vip", publishMode: "ingress" }, web) as { mode: string; ports: { publishMode: string }[] };
    expect(spec.mode).toBe("vip");
    expect(spec.ports[0]).toMatchObject({ publishMode: "ingress" });
  });

  it("publishes nothing for internal services", () => {
    expect(endpointSpec({ endpointMode: "dnsrr", publishMode: "host" })).toEqual({ mode: "dnsrr" });
  });
});

describe("llmEnv (docs/protocol.md Providers)", () => {
  it("offline: only the mode", () => {
    expect(llmEnv({ provider: "offline" }, undefined)).toEqual({ LLM_PROVIDER: "offline" });
  });

  it("auto: a server key is the Gemini key, a base URL is the OpenAI-compatible server", () => {
    expect(llmEnv({ provider: "auto", baseUrl: "http://ollama:11434/v1" }, "/run/secrets/llm_api_key")).toEqual({
      LLM_PROVIDER: "auto",
      GEMINI_API_KEY_FILE: "/run/secrets/llm_api_key",
      OPENAI_BASE_URL: "http://ollama:11434/v1",
    });
  });

  it("gemini: key, base URL and model go to the GEMINI_ variables", () => {
    expect(llmEnv({ provider: "gemini", baseUrl: "http://fake:1", model: "gemini-2.5-pro" }, "/run/secrets/k")).toEqual({
      LLM_PROVIDER: "gemini",
      GEMINI_API_KEY_FILE: "/run/secrets/k",
      GEMINI_BASE_URL: "http://fake:1",
      GEMINI_MODEL: "gemini-2.5-pro",
    });
  });

  it("openai: key, base URL and model go to the OPENAI_ variables", () => {
    expect(llmEnv({ provider: "openai", baseUrl: "http://vllm:8000/v1", model: "llama3.2" }, "/run/secrets/k")).toEqual({
      LLM_PROVIDER: "openai",
      OPENAI_API_KEY_FILE: "/run/secrets/k",
      OPENAI_BASE_URL: "http://vllm:8000/v1",
      OPENAI_MODEL: "llama3.2",
    });
  });
});

describe("names and addresses", () => {
  it("names services <stack>_<service> like `docker stack deploy` did", () => {
    expect(serviceName("ai-system", "worker-python")).toBe("ai-system_worker-python");
  });

  it("points the docker provider at the manager over SSH with its port", () => {
    const manager = { name: "m", host: "192.0.2.11", sshPort: 11661, user: "deploy", role: "manager" as const, labels: {} };
    expect(managerDockerHost({ manager })).toBe("ssh://deploy@192.0.2.11:11661");
    expect(managerSshOpts({ sshPrivateKeyPath: "/k" })).toEqual(
      expect.arrayContaining(["-i", "/k", "BatchMode=yes", "StrictHostKeyChecking=accept-new"]),
    );
    expect(managerSshOpts({})).not.toContain("-i");
  });

  it("uses an IP or DNS subject alternative name for the registry certificate", () => {
    expect(subjectAltName("192.0.2.11")).toBe("IP:192.0.2.11");
    expect(subjectAltName("manager.example")).toBe("DNS:manager.example");
  });
});
