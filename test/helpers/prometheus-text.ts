/** Reading Prometheus text expositions in tests. */

/** The labels of a series as a sorted, comparable string: `a="1",b="2"`. */
function labelSet(labels: string): string {
  return (labels.match(/[a-zA-Z_]+="(?:[^"\\]|\\.)*"/g) ?? []).sort().join(',');
}

/** The value of one series in a Prometheus text exposition (labels in any order), or undefined. */
export function sample(exposition: string, series: string): number | undefined {
  const [, name, labels = ''] = /^([a-zA-Z_:]+)(?:\{(.*)\})?$/.exec(series) ?? [];
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match && match[1] === name && labelSet(match[2] ?? '') === labelSet(labels)) return Number(match[3]);
  }
  return undefined;
}
