import { EPOCH_FIELD, VERSION_FIELD } from './keys'

/*
 * Every change of the ID hash bumps its version and is published with it, in
 * one script, so a node can tell whether a snapshot it read is older than a
 * change it already applied. The epoch tells a hash that was lost and rebuilt
 * (a Redis restarted without its data) from the one the node knew.
 * KEYS[1] = the ID hash; ARGV[1] = the channel.
 */

const BUMP = `
redis.call('HSETNX', KEYS[1], '${EPOCH_FIELD}', ARGV[3])
local epoch = redis.call('HGET', KEYS[1], '${EPOCH_FIELD}')
local version = redis.call('HINCRBY', KEYS[1], '${VERSION_FIELD}', 1)
`

/** ARGV[2] = ID, ARGV[3] = a fresh epoch in case the hash has none, ARGV[4] = record JSON. Returns 0 when the ID is taken, else the new version. */
export const ADD_SCRIPT = `
if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[4]) == 0 then return 0 end
${BUMP}
redis.call('PUBLISH', ARGV[1], 'add ' .. epoch .. ' ' .. version .. ' ' .. ARGV[4])
return version
`

/**
 * Compare-and-set: ARGV[2] = ID, ARGV[3] = a fresh epoch, ARGV[4] = the new
 * record JSON, ARGV[5] = the JSON it was computed from. Writes only if the
 * stored JSON is still that one, so a rotation never undoes another node's
 * change nor brings back a removed ID. Returns 0 when the ID is not there,
 * -1 when it changed meanwhile (read again and retry), else the new version.
 * Published as an add carrying the whole record: every mirror replaces the
 * record at once, nodes of older versions included.
 */
export const REPLACE_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], ARGV[2])
if not stored then return 0 end
if stored ~= ARGV[5] then return -1 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
${BUMP}
redis.call('PUBLISH', ARGV[1], 'add ' .. epoch .. ' ' .. version .. ' ' .. ARGV[4])
return version
`

/** ARGV[2] = ID, ARGV[3] = a fresh epoch. Returns 0 when the ID was not there. */
export const REMOVE_SCRIPT = `
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
${BUMP}
redis.call('PUBLISH', ARGV[1], 'remove ' .. epoch .. ' ' .. version .. ' ' .. ARGV[2])
return 1
`
