// One chart per scenario: throughput per variant (median, whisker min–max),
// one panel per group; latency windows for the rotation scenario.
import { WINDOW_AFTER_MS, WINDOW_BEFORE_MS, type RotationFigures } from '../scenarios/rotation.ts';
import type { ScenarioResult } from '../support/figures.ts';
import { SCENARIO_NUMBERS } from './markdown.ts';
import { COLORS, barChart, type Bar } from './svg-chart.ts';
import { sidecarChart } from './sidecar-report.ts';

/** colorOf picks a variant's color: baselines grey, Node blue, @shop/auth orange, Go green. */
export function colorOf(id: string): string {
  if (id.startsWith('go')) return COLORS.go;
  if (id.includes('auth')) return COLORS.auth;
  if (['http', 'tls', 'insecure'].includes(id)) return COLORS.baseline;
  return COLORS.node;
}

/** scenarioChart draws `s`, or returns undefined when there is nothing to draw. */
export function scenarioChart(s: ScenarioResult): string | undefined {
  if (s.skipped || s.groups.length === 0) return undefined;
  const title = `${SCENARIO_NUMBERS[s.id] ?? ''}. ${s.title}`;
  if (s.extra?.sidecar) return sidecarChart(title, s);
  const rot = s.extra?.rotation as RotationFigures | undefined;
  if (rot) {
    const bar = (label: string, value: number, color: string): Bar => ({ label, value, color });
    return barChart(
      title,
      [
        {
          title: 'latency of requests started around a rotation vs the rest of the run',
          unit: 'ms',
          bars: [
            bar('p50, steady', rot.steady.p50, COLORS.node),
            bar('p50, around a rotation', rot.aroundRotation.p50, COLORS.auth),
            bar('p99, steady', rot.steady.p99, COLORS.node),
            bar('p99, around a rotation', rot.aroundRotation.p99, COLORS.auth),
          ],
        },
        {
          title: 'slowest request',
          unit: 'ms',
          bars: [
            bar('max, steady', rot.steady.max, COLORS.node),
            bar('max, around a rotation', rot.aroundRotation.max, COLORS.auth),
          ],
        },
      ],
      `Blue: steady; orange: started ${WINDOW_BEFORE_MS} ms before to ${WINDOW_AFTER_MS} ms after a rotation. ${rot.rotations} rotations every ${rot.periodMs / 1000} s, ${rot.failed} failed requests, ${rot.clientConnections} connections opened.`,
    );
  }
  return barChart(
    title,
    s.groups.map((g) => ({
      title: g.title,
      unit: g.unit,
      bars: g.variants.map((v) => ({
        label: v.label.length > 54 ? `${v.label.slice(0, 52)}…` : v.label,
        value: v.throughput.median,
        min: v.throughput.min,
        max: v.throughput.max,
        color: colorOf(v.id),
      })),
    })),
    'Bars: median over rounds; whiskers: min–max. Grey: baselines; blue: Node alone; orange: @shop/auth; green: Go.',
  );
}
