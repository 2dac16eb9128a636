/** Reading the Prometheus text format exactly: each sample of a metric with its whole label set. */

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** samples: every sample line of `name` (a histogram's `name_bucket`, `name_count`… are names of their own). */
export function samples(text: string, name: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    found.push({ labels, value: Number(match[3]) });
  }
  return found;
}

/** sample: the value of the one sample of `name` with exactly these labels (undefined when there is none). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return samples(text, name).find((s) => JSON.stringify(Object.entries(s.labels).sort()) === wanted)?.value;
}
