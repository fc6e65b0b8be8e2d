import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PLUGIN_METRICS } from '../lib/relay/metrics'

/*
 * The alert expressions operations.md offers are pasted into Prometheus as
 * they are: a metric renamed, a label it does not have, or an outcome the
 * relay no longer counts would make an alert that never fires, without a
 * word. Each is checked against the metrics the plugin makes and the label
 * values the docs list (which docs.test.ts checks against the code).
 */

const ROOT = join(__dirname, '..')
const operations = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8')
const cluster = readFileSync(join(ROOT, 'docs', 'cluster.md'), 'utf8')

function section (text: string, heading: string): string {
  const at = text.indexOf(heading)
  if (at < 0) throw new Error(`no section ${heading}`)
  const next = text.indexOf('\n## ', at + heading.length)
  return text.slice(at, next < 0 ? undefined : next)
}

/** The PromQL of each row of the alerts table, by the alert's name. */
function alerts (): Map<string, string> {
  const rows = new Map<string, string>()
  for (const line of section(operations, '## What to alert on').split('\n')) {
    const m = /^\| ([^|]+) \| `((?:[^`]|\\`)+)`/.exec(line)
    if (m !== null && m[1] !== 'alert') rows.set(m[1].trim(), m[2].replace(/\\\|/g, '|'))
  }
  return rows
}

const documentedValues = new Set([...section(operations, '### Label values').matchAll(/`([a-z_0-9]+)`/g), ...section(cluster, '## Metrics').matchAll(/`([a-z_0-9]+)`/g)].map(m => m[1]))
const FIXED: Record<string, (value: string) => boolean> = {
  side: v => v === 'hidden' || v === 'mobile',
  status: v => /^\d{3}$/.test(v),
  result: v => ['reloaded', 'unchanged', 'failed'].includes(v)
}

t.test('every alert expression names metrics, labels and label values the relay has', async t => {
  const rows = alerts()
  t.ok(rows.size >= 15, `the alerts table is found (${rows.size} rows)`)
  for (const [name, expr] of rows) {
    for (const m of expr.matchAll(/\b(rendezvous_[a-z0-9_]+)(?:\{([^}]*)\})?/g)) {
      const series = m[1]
      const metric = PLUGIN_METRICS[series] ?? PLUGIN_METRICS[series.replace(/_(bucket|count|sum)$/, '')]
      t.ok(metric, `${name}: ${series} is a metric the relay makes`)
      for (const [, label, , values] of (m[2] ?? '').matchAll(/([a-z_]+)\s*(=~|!=|!~|=)\s*"([^"]*)"/g)) {
        if (label === 'le' || label === 'job' || label === 'instance') continue
        t.ok(metric?.labelNames.includes(label), `${name}: ${series} has a label ${label}`)
        for (const value of values.split('|')) {
          const known = FIXED[label]?.(value) ?? documentedValues.has(value)
          t.ok(known, `${name}: ${label}="${value}" is a value the relay counts`)
        }
      }
    }
  }
})

t.test('the check catches a wrong label value', async t => {
  t.notOk(documentedValues.has('no_such_outcome'))
  t.ok(documentedValues.has('store_unavailable') && documentedValues.has('peer_failed'), 'values of both docs are read')
})
