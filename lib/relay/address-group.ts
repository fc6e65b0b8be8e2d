import { isIPv6 } from 'node:net'
import { normaliseAddress } from './auth-throttle'

/** Maps a client's address to the key its per-address limits are counted under. */
export type AddressKey = (address: string) => string

/**
 * The key per-address limits count under: an IPv4 address as it is, an IPv6
 * address by its first `ipv6Subnet` bits. One IPv6 host is routinely given a
 * whole /64 (SLAAC, privacy addresses, a phone's tethering prefix) and can
 * send from any of its 2^64 addresses at no cost, so counting full IPv6
 * addresses would give it as many budgets as it cares to use: connections
 * past `maxConnectionsPerAddress`, and guesses past `authFailures`.
 */
export function addressKeyer (ipv6Subnet: number): AddressKey {
  return address => {
    const normal = normaliseAddress(address)
    const groups = ipv6Groups(normal)
    return groups === undefined ? normal : `${compressed(masked(groups, ipv6Subnet))}/${ipv6Subnet}`
  }
}

// The eight 16-bit groups of an IPv6 address, or undefined for anything else.
function ipv6Groups (address: string): number[] | undefined {
  const bare = address.split('%', 1)[0]!
  if (!isIPv6(bare)) return undefined
  const text = dottedTail(bare)
  const [head = '', tail] = text.split('::')
  const left = groupsOf(head)
  if (tail === undefined) return left
  const right = groupsOf(tail)
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}

// ::a.b.c.d and its kin write the last 32 bits as IPv4.
function dottedTail (address: string): string {
  const at = address.lastIndexOf(':')
  const tail = address.slice(at + 1)
  if (!tail.includes('.')) return address
  const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number)
  return `${address.slice(0, at + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

function groupsOf (text: string): number[] {
  return text === '' ? [] : text.split(':').map(group => Number.parseInt(group, 16))
}

// RFC 5952's form, as Node writes addresses: the longest run of two or more zero groups (the first of equals) as ::.
function compressed (groups: number[]): string {
  let best = { at: -1, length: 1 }
  for (let at = 0; at < groups.length;) {
    let end = at
    while (end < groups.length && groups[end] === 0) end++
    if (end - at > best.length) best = { at, length: end - at }
    at = end === at ? at + 1 : end
  }
  const hex = groups.map(group => group.toString(16))
  if (best.at === -1) return hex.join(':')
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.length).join(':')}`
}

function masked (groups: number[], bits: number): number[] {
  return groups.map((group, i) => {
    const kept = Math.min(16, Math.max(0, bits - i * 16))
    return kept === 0 ? 0 : group & (0xffff << (16 - kept)) & 0xffff
  })
}
