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
    if (groups === undefined) return normal
    return translatedIpv4(groups) ?? `${compressed(masked(groups, ipv6Subnet))}/${ipv6Subnet}`
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

// NAT64's well-known prefix (64:ff9b::/96) carries an IPv4 client in its last 32 bits: behind a
// translator every IPv4 client would otherwise share the translator's /64, and one budget.
function translatedIpv4 (groups: number[]): string | undefined {
  if (groups[0] !== 0x64 || groups[1] !== 0xff9b || groups.slice(2, 6).some(group => group !== 0)) return undefined
  const [high = 0, low = 0] = groups.slice(6)
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.')
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
