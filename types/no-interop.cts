// A CommonJS TypeScript program that uses only the agent and the client,
// compiled without esModuleInterop or allowSyntheticDefaultImports, and with
// every .d.ts checked: the types of both entries must not lean on either.
import { AgentOptionError, RendezvousAgent, RendezvousAuthError, RendezvousCertificateError, createTotp, type AgentStats, type RendezvousAgentOptions } from 'fastify-rendezvous/agent'
import { createRendezvousFetch, rendezvousFetch, type RendezvousFetchOptions } from 'fastify-rendezvous/client'
import * as net from 'node:net'

const options: RendezvousAgentOptions = { url: 'https://rendezvous.example', id: 'hub', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', to: 'http://127.0.0.1:3000' }
const agent = new RendezvousAgent(options)
const inProcess = new RendezvousAgent({ ...options, to: undefined, server: net.createServer(), ca: [Buffer.from('PEM')] })
agent.on('parked', ({ parked, pool }) => console.log(parked, pool))
agent.on('fatal', err => {
  const code: 'RENDEZVOUS_CREDENTIALS_REFUSED' | 'RENDEZVOUS_CERTIFICATE_REJECTED' = err.code
  console.log(code, err instanceof RendezvousAuthError ? err.status : err instanceof RendezvousCertificateError ? err.problem : err)
})
try {
  new RendezvousAgent({ ...options, pool: 0 }) // eslint-disable-line no-new
} catch (err) {
  if (err instanceof AgentOptionError) console.log(err.code, err.option, err.problem)
}
const stats: AgentStats = agent.stats
console.log(stats.parked, inProcess.stats.parked, createTotp(options.secret))

const fetchOptions: RendezvousFetchOptions = { id: 'hub' }
void createRendezvousFetch(fetchOptions)('https://rendezvous.example/status').then((res: Response) => res.status)
void rendezvousFetch('https://rendezvous.example/', { id: 'hub', method: 'POST', body: 'x' })
