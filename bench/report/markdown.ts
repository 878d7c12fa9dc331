// The Markdown report: a summary table of the headline ratios, then per
// scenario its chart, figures, ratios, a short reading, checks and notes.
import type { RunResult } from '../run.ts';
import type { Comparison, Group, ScenarioResult, VariantFigures } from '../support/figures.ts';
import type { Spread } from '../support/stats.ts';
import type { RotationFigures } from '../scenarios/rotation.ts';
import { formatValue } from './svg-chart.ts';
import { sidecarSection } from './sidecar-report.ts';
import type { SidecarFigures } from '../scenarios/sidecar.ts';

/** SCENARIO_NUMBERS number the scenarios as docs/performance.md does. */
export const SCENARIO_NUMBERS: Record<string, number> = {
  'keep-alive': 1,
  'new-connection': 2,
  grpc: 3,
  chain: 4,
  rotation: 5,
  'go-peer': 6,
  scale: 7,
  sidecar: 8,
};

/** ratio prints a paired ratio as "0.93× [0.90–0.95]". */
export function ratio(s: Spread | undefined): string {
  if (!s || !Number.isFinite(s.median)) return '–';
  return `${s.median.toFixed(2)}× [${s.min.toFixed(2)}–${s.max.toFixed(2)}]`;
}

function spreadText(s: Spread | undefined): string {
  if (!s || !Number.isFinite(s.median)) return '–';
  return `${formatValue(s.median)} [${formatValue(s.min)}–${formatValue(s.max)}]`;
}

function straddles(s: Spread): boolean {
  return s.min <= 1 && s.max >= 1;
}

function percent(x: number): string {
  return `${Math.abs(Math.round((x - 1) * 100))} %`;
}

/** readComparison says in words what one ratio shows; `coarse` leaves out latency (whole-millisecond figures). */
export function readComparison(c: Comparison, unit: string, coarse = false): string {
  const t = c.throughput;
  const parts: string[] = [];
  if (!Number.isFinite(t.median)) parts.push('no throughput figure');
  else if (straddles(t)) parts.push(`throughput within noise (${t.median.toFixed(2)}×, rounds on both sides of 1)`);
  else parts.push(`\`${c.of}\` does ${percent(t.median)} ${t.median < 1 ? 'fewer' : 'more'} ${unit} than \`${c.to}\``);
  if (!coarse && Number.isFinite(c.p99.median)) {
    parts.push(straddles(c.p99) ? `p99 within noise (${c.p99.median.toFixed(2)}×)` : `p99 ${c.p99.median.toFixed(2)}×`);
  }
  for (const [side, cpu] of Object.entries(c.cpu)) {
    if (!Number.isFinite(cpu.median)) continue;
    parts.push(
      straddles(cpu)
        ? `${side} CPU per request within noise (${cpu.median.toFixed(2)}×)`
        : `${side} CPU per request ${cpu.median > 1 ? '+' : '−'}${percent(cpu.median)}`,
    );
  }
  return `**${c.meaning}**: ${parts.join('; ')}.`;
}

/** latency prints a latency figure, or "<1" below a coarse load generator's resolution. */
function latency(g: Group, ms: number): string {
  if (g.latencyResolutionMs !== undefined && ms < g.latencyResolutionMs) return `<${g.latencyResolutionMs}`;
  return formatValue(ms);
}

function variantTable(g: Group): string[] {
  const sides = [...new Set(g.variants.flatMap((v) => Object.keys(v.cpu)))];
  const head = [
    'Variant',
    `${g.unit}, median [min–max]`,
    'p50 ms',
    'p99 ms',
    ...sides.map((s) => `${s} CPU µs/req`),
    'errors',
  ];
  const rows = g.variants.map((v: VariantFigures) => [
    `${v.label} (\`${v.id}\`)`,
    spreadText(v.throughput),
    latency(g, v.p50.median),
    latency(g, v.p99.median),
    ...sides.map((s) => formatValue(v.cpu[s]?.median ?? Number.NaN)),
    String(v.errors),
  ]);
  return table(head, rows);
}

function comparisonTable(g: Group): string[] {
  if (g.comparisons.length === 0) return [];
  const sides = [...new Set(g.comparisons.flatMap((c) => Object.keys(c.cpu)))];
  return table(
    ['Ratio', 'What it shows', g.unit, 'p50', 'p99', ...sides.map((s) => `${s} CPU/req`)],
    g.comparisons.map((c) => [
      `\`${c.of}\` / \`${c.to}\``,
      c.meaning,
      ratio(c.throughput),
      g.latencyResolutionMs === undefined ? ratio(c.p50) : '–',
      g.latencyResolutionMs === undefined ? ratio(c.p99) : '–',
      ...sides.map((s) => ratio(c.cpu[s])),
    ]),
  );
}

function table(head: string[], rows: string[][]): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
  ];
}

/** summaryTable is the headline ratios of every scenario, with the rotation figures and the checks. */
export function summaryTable(run: RunResult): string[] {
  const rows: string[][] = [];
  for (const s of run.scenarios) {
    const n = SCENARIO_NUMBERS[s.id] ?? 0;
    if (s.skipped) {
      rows.push([`${n} ${s.id}`, `skipped: ${s.skipped}`, '', '', '']);
      continue;
    }
    for (const g of s.groups) {
      for (const c of g.comparisons.filter((x) => x.headline)) {
        rows.push([
          `${n} ${s.id}: ${g.id}`,
          `${c.meaning} (\`${c.of}\` / \`${c.to}\`)`,
          ratio(c.throughput),
          g.latencyResolutionMs === undefined ? ratio(c.p99) : '–',
          Object.entries(c.cpu)
            .filter(([, x]) => Number.isFinite(x.median))
            .map(([side, x]) => `${side} ${x.median.toFixed(2)}×`)
            .join(', ') || '–',
        ]);
      }
    }
    const rot = s.extra?.rotation as RotationFigures | undefined;
    if (rot) {
      rows.push([
        `${n} ${s.id}`,
        `p99 around a rotation / steady (${rot.rotations} rotations, ${rot.failed} failed requests)`,
        '',
        `${(rot.aroundRotation.p99 / rot.steady.p99).toFixed(2)}× (${formatValue(rot.aroundRotation.p99)} / ${formatValue(rot.steady.p99)} ms)`,
        '',
      ]);
    }
  }
  const checks = run.scenarios.flatMap((s) => s.checks);
  const passed = checks.filter((c) => c.ok).length;
  rows.push(['checks', `${passed} of ${checks.length} correctness checks passed`, '', '', '']);
  return table(['Scenario', 'Ratio', 'Throughput', 'p99', 'CPU per request (median)'], rows);
}

function rotationSection(rot: RotationFigures): string[] {
  const w = (name: string, x: RotationFigures['steady']): string[] => [
    name,
    String(x.requests),
    String(x.failed),
    formatValue(x.p50),
    formatValue(x.p99),
    formatValue(x.max),
  ];
  return [
    ...table(
      ['Requests started', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms'],
      [
        w('steady (outside every window)', rot.steady),
        w('around a rotation (all windows)', rot.aroundRotation),
        ...rot.perRotation.map((x, i) => w(`around rotation ${i + 1}`, x)),
      ],
    ),
    '',
    `${rot.rotations} rotations every ${rot.periodMs / 1000} s, SVIDs living ${rot.svidLifetimeMs / 1000} s; the client opened ${rot.clientConnections} connections; ${rot.failed} requests failed.`,
  ];
}

function scenarioSection(s: ScenarioResult, chart: string | undefined): string[] {
  const n = SCENARIO_NUMBERS[s.id] ?? 0;
  const out = [`## ${n}. ${s.title}`, ''];
  if (s.skipped) return [...out, `Skipped: ${s.skipped}`, ''];
  if (chart) out.push(`![${s.title}](${chart})`, '');
  const settings = Object.entries(s.settings).map(([k, v]) => `${k} ${String(v)}`);
  if (settings.length > 0) out.push(`Settings: ${settings.join(', ')}; ${s.seconds} s.`, '');
  for (const g of s.groups) {
    out.push(`### ${g.title}`, '', ...variantTable(g), '');
    if (g.latencyResolutionMs !== undefined) {
      out.push(`Latency is recorded in steps of ${g.latencyResolutionMs} ms by this load generator.`, '');
    }
    const extras = g.variants.filter((v) => v.extra);
    if (extras.length > 0) {
      out.push(
        'Counters: ' +
          extras
            .map(
              (v) =>
                `\`${v.id}\` ${Object.entries(v.extra ?? {})
                  .map(([k, x]) => `${k} ${String(x)}`)
                  .join(', ')}`,
            )
            .join('; ') +
          '.',
        '',
      );
    }
    const errors = g.variants.filter((v) => v.errorSamples.length > 0);
    for (const v of errors) out.push(`Errors of \`${v.id}\`: ${v.errorSamples.join('; ')}`, '');
    if (g.comparisons.length > 0) {
      out.push(...comparisonTable(g), '', 'Reading:', '');
      for (const c of g.comparisons) {
        out.push(`- ${readComparison(c, g.unit, g.latencyResolutionMs !== undefined)}`);
      }
      out.push('');
    }
  }
  const rot = s.extra?.rotation as RotationFigures | undefined;
  if (rot) out.push(...rotationSection(rot), '');
  const side = s.extra?.sidecar as SidecarFigures | undefined;
  if (side) out.push(...sidecarSection(side), '');
  if (s.checks.length > 0) {
    out.push('Checks (correctness, asserted on this run):', '');
    for (const c of s.checks) out.push(`- ${c.ok ? '✅' : '❌'} ${c.name} — ${c.detail}`);
    out.push('');
  }
  if (s.notes.length > 0) {
    out.push('Notes:', '');
    for (const note of s.notes) out.push(`- ${note}`);
    out.push('');
  }
  return out;
}

/** renderMarkdown writes the whole report; `charts` maps scenario ids to chart paths relative to the report. */
export function renderMarkdown(run: RunResult, stamp: string, charts: Record<string, string>): string {
  const m = run.machine;
  const lines = [
    `# Benchmark ${stamp}: what mTLS and @shop/auth cost`,
    '',
    `${run.profile.name === 'full' ? 'Full' : 'Quick (figures mean nothing)'} run of \`npm run bench\`, ${run.seconds} s, started ${run.startedAt}.`,
    `Machine: ${m.cpus} × ${m.model}${m.mhz ? ` (${m.mhz} MHz)` : ''}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node} (OpenSSL ${m.openssl})${m.go ? `; ${m.go}` : ''}.`,
    `Load average (1/5/15 min) at start ${m.loadAverage.join(' / ')}, at end ${run.loadAverageAtEnd.join(' / ')}.`,
    '',
    `Every figure: [${stamp}.json](${stamp}.json). What the scenarios and ratios mean, and the caveats: [docs/performance.md](../../docs/performance.md).`,
    '',
    'Ratios are the median of per-round ratios (variants alternate within each round), [min–max] over rounds. Throughput below 1× is slower; latency and CPU above 1× are dearer.',
    '',
    '## Summary',
    '',
    ...summaryTable(run),
    '',
  ];
  for (const s of run.scenarios) lines.push(...scenarioSection(s, charts[s.id]));
  return lines.join('\n');
}
