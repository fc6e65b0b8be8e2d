// `fastify-rendezvous/agent`: the hidden side, for Node programs that park
// their own connections at a rendezvous (docs/agent.md, docs/protocol.md).
export { AgentClosedError, AgentOptionError, RendezvousAgent, RendezvousAuthError, RendezvousCertificateError } from '../agent/agent'
export type { RendezvousAgentOptions, AgentEvents, AgentStats, ErrorPhase, CertificateProblem } from '../agent/agent'
export { createV1Token } from '../tokens/v1'
export { createTotp } from '../tokens/totp'
