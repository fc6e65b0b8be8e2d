/**
 * A copy of `key` that owns its characters. A key built from parts of a
 * request (an ID or nonce is a slice of the CONNECT's URL) would otherwise
 * be a V8 rope of slices that keeps the whole URL alive for as long as the key is kept:
 * about 250 B more per entry (docs/performance.md). The JSON round trip is
 * exact for every string, lone surrogates included.
 */
export function owned (key: string): string {
  return JSON.parse(JSON.stringify(key)) as string
}
