// `fastify-rendezvous/client`: the mobile side, a fetch that answers the
// rendezvous's Digest challenge with a hidden server's ID (docs/protocol.md).
export { createRendezvousFetch, rendezvousFetch } from '../client/digest-fetch'
export type { RendezvousFetchOptions } from '../client/digest-fetch'
