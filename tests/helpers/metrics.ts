/** Reads /metrics with a real Prometheus text-format parser, for assertions on single samples. */
import parsePrometheusTextFormat from "parse-prometheus-text-format";

interface Sample {
  value?: string;
  labels?: Record<string, string>;
  /** Histograms: cumulative count per upper bound, and the totals. */
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}
interface Family {
  name: string;
  type: string;
  metrics: Sample[];
}

export class Scrape {
  readonly families: Map<string, Family>;
  constructor(text: string) {
    const parsed = parsePrometheusTextFormat(text) as Family[];
    this.families = new Map(parsed.map((f) => [f.name, f]));
  }

  /** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const family = this.families.get(name);
    if (family === undefined) throw new Error(`No metric family "${name}" in the scrape`);
    const hits = family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    if (hits.length > 1) {
      throw new Error(`${hits.length} samples of "${name}" match ${JSON.stringify(labels)}`);
    }
    return hits[0]?.value === undefined ? undefined : Number(hits[0].value);
  }

  samples(name: string): Sample[] {
    return this.families.get(name)?.metrics ?? [];
  }
}

export async function scrape(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return new Scrape(await res.text());
}
