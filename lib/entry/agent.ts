// `fastify-rendezvous/agent`: the hidden side, for Node programs that park
// their own connections at a rendezvous (docs/agent.md, docs/protocol.md).
export { AgentOptionError, RendezvousAgent, RendezvousAuthError } from '../agent/agent'
export type { RendezvousAgentOptions, AgentEvents, AgentStats, ErrorPhase } from '../agent/agent'
export { createV1Token } from '../tokens/v1'
export { createTotp } from '../tokens/totp'
