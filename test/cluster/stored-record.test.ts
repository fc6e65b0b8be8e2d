import t from 'tap'
import { parseRecord, storedJson } from '../../lib/cluster/stored-record'
import { createRecord, rotateRecord } from '../../lib/registry/records'

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const OTHER = 'KRUGS4ZANFZSAYJAORSXG5BAONSWG4TF'
const AT = '2026-01-01T00:00:00.000Z'

t.test('a rotated record survives storing and reading back; an added one is stored without rotation fields', async t => {
  const added = createRecord({ id: 'Hub-1', secret: SECRET })
  t.same(JSON.parse(storedJson(added)), { id: 'hub-1', secret: SECRET, createdAt: added.createdAt })
  t.same(parseRecord('hub-1', storedJson(added)), added)

  const rotated = rotateRecord(added, { secret: OTHER, overlapMs: 60_000 })
  t.same(JSON.parse(storedJson(rotated)), { id: 'hub-1', secret: OTHER, createdAt: added.createdAt, previousSecret: SECRET, previousExpiresAt: rotated.previousExpiresAt })
  t.same(parseRecord('hub-1', storedJson(rotated)), rotated)
  t.ok(Object.isFrozen(parseRecord('hub-1', storedJson(rotated))))

  const cut = rotateRecord(added, { secret: OTHER, overlapMs: 0 })
  t.same(JSON.parse(storedJson(cut)), { id: 'hub-1', secret: OTHER, createdAt: added.createdAt }, 'overlap 0 keeps nothing of the old secret')
})

t.test('older records without rotation fields stay valid', async t => {
  t.same(parseRecord('hub-1', JSON.stringify({ id: 'hub-1', secret: SECRET, createdAt: AT })), { id: 'hub-1', secret: SECRET, createdAt: AT })
})

t.test('a damaged rotation makes the record damaged: both fields or neither, a valid secret and a parsable date', async t => {
  const base = { id: 'hub-1', secret: SECRET, createdAt: AT }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['previousSecret alone', { previousSecret: OTHER }],
    ['previousExpiresAt alone', { previousExpiresAt: AT }],
    ['a previousSecret that is not base32', { previousSecret: 'not base32!', previousExpiresAt: AT }],
    ['a previousSecret too short', { previousSecret: 'JBSWY3DP', previousExpiresAt: AT }],
    ['a previousSecret that is a number', { previousSecret: 12345, previousExpiresAt: AT }],
    ['a previousExpiresAt that is no date', { previousSecret: OTHER, previousExpiresAt: 'soon' }],
    ['a previousExpiresAt that is a number', { previousSecret: OTHER, previousExpiresAt: Date.now() }]
  ]
  for (const [what, extra] of cases) {
    t.equal(parseRecord('hub-1', JSON.stringify({ ...base, ...extra })), undefined, what)
  }
})

t.test('what is not a record is skipped', async t => {
  const good = JSON.stringify({ id: 'hub-1', secret: SECRET, createdAt: AT })
  t.equal(parseRecord('#version', '3'), undefined)
  t.equal(parseRecord('Hub-1', good), undefined, 'fields are canonical IDs')
  t.equal(parseRecord('hub-2', good), undefined, 'the JSON names another ID')
  t.equal(parseRecord('hub-1', '{'), undefined)
  t.equal(parseRecord('hub-1', '[]'), undefined)
  t.equal(parseRecord('hub-1', JSON.stringify({ id: 'hub-1', secret: 'short', createdAt: AT })), undefined)
})

t.test('a rotation inside another\'s overlap is stored with both old secrets, and read back the same', async t => {
  const THIRD = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
  const added = createRecord({ id: 'hub-1', secret: SECRET })
  const first = rotateRecord(added, { secret: OTHER, overlapMs: 60_000 })
  const second = rotateRecord(first, { secret: THIRD, overlapMs: 30_000 })
  t.same(JSON.parse(storedJson(second)), {
    id: 'hub-1',
    secret: THIRD,
    createdAt: added.createdAt,
    previousSecret: OTHER,
    previousExpiresAt: second.previousExpiresAt,
    olderSecrets: [{ secret: SECRET, expiresAt: first.previousExpiresAt }]
  }, 'the pair as before, so a node of an earlier version still takes the latest old secret')
  t.same(parseRecord('hub-1', storedJson(second)), second)
  const damaged = { ...JSON.parse(storedJson(second)), olderSecrets: [{ secret: SECRET }] }
  t.equal(parseRecord('hub-1', JSON.stringify(damaged)), undefined, 'a damaged older secret is a damaged record')
})
