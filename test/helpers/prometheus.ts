/** One series of a metric in Prometheus text, such as `name{label="v"}`, or undefined when the scrape has none. */
export function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}
