"""ai-swarm Python worker: takes tasks over MQTT, asks an LLM, reports over gRPC.

Start with `python -m aiswarm_worker`; the contract is docs/protocol.md.
"""
