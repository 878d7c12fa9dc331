// The sidecar scenario's own report parts: the goal's verdict, where each
// variant stops keeping up, and a chart of total CPU per request and p99 by
// rate (its throughput chart would only show the offered rates again).
import type { Group, ScenarioResult } from '../support/figures.ts';
import type { SidecarFigures } from '../scenarios/sidecar.ts';
import { PATH_TOTAL, SPIRE_AGENTS, type SidecarChainFigures } from '../scenarios/sidecar-chain.ts';
import type { Spread } from '../support/stats.ts';
import { COLORS, barChart, formatValue, type Bar } from './svg-chart.ts';

const COLOR: Record<string, string> = {
  http: COLORS.baseline,
  'mtls-raw': COLORS.node,
  auth: COLORS.auth,
  ghostunnel: COLORS.go,
};

function row(cells: string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

// A difference with its sign, so a negative one does not read "+-3.4".
function signed(v: number): string {
  return `${v < 0 ? '−' : '+'}${formatValue(Math.abs(v))}`;
}

/** sidecarSection is the Markdown the report adds under the sidecar scenario's tables. */
export function sidecarSection(f: SidecarFigures): string[] {
  const out: string[] = ['### Library or sidecar? The goal at 1000 req/s', ''];
  const g = f.goal;
  if (g) {
    out.push(
      row(['Goal (issue 15)', 'measured', 'met?']),
      row(['---', '---', '---']),
      row([
        'total CPU/request in-process ≤ 1/5 of the sidecar pair’s',
        `${formatValue(g.cpuInProcessUs)} µs vs ${formatValue(g.cpuPairUs)} µs = ${g.cpuRatio.toFixed(2)}×`,
        g.cpuRatio <= 0.2 ? 'yes' : 'no',
      ]),
      row([
        '(same, counting only what each adds over plaintext’s ' + `${formatValue(g.cpuPlainUs)} µs)`,
        `${g.addedCpuRatio.toFixed(2)}×`,
        g.addedCpuRatio <= 0.2 ? 'yes' : 'no',
      ]),
      row([
        'added p99 over plaintext in-process ≤ 1/3 of the pair’s',
        `${signed(g.addedP99InProcessMs)} ms vs ${signed(g.addedP99PairMs)} ms` +
          (Number.isFinite(g.p99Ratio) ? ` = ${g.p99Ratio.toFixed(2)}×` : ''),
        // The pair added no p99 over plaintext: the run says nothing about this half of the goal.
        Number.isFinite(g.p99Ratio)
          ? g.p99Ratio <= 1 / 3
            ? 'yes'
            : 'no'
          : 'cannot be judged: the pair added no p99 over plaintext at this rate',
      ]),
      '',
      `Goal ${g.met ? 'met' : 'missed'} on this run (medians over rounds; load average ${f.loadAverage.join(' / ')} at the start).`,
      '',
    );
  }
  const variants = [...new Set(f.rates.map((r) => r.variant))];
  const rates = [...new Set(f.rates.map((r) => r.rate))];
  out.push(
    '### Where each variant stops keeping up',
    '',
    row(['Variant', ...rates.map((r) => `${r}/s: achieved, p99 ms, total CPU µs/req`), 'highest rate kept up']),
    row(['---', ...rates.map(() => '---'), '---']),
  );
  for (const v of variants) {
    out.push(
      row([
        `\`${v}\``,
        ...rates.map((rate) => {
          const x = f.rates.find((r) => r.variant === v && r.rate === rate);
          if (!x) return '–';
          return `${formatValue(x.achieved)}, ${formatValue(x.p99)}, ${formatValue(x.totalCpuUs)}${x.keptUp ? '' : ' ✗'}${x.overflow ? ` (overflow ${x.overflow})` : ''}`;
        }),
        f.highestKeptUp[v] ? `${f.highestKeptUp[v]}/s` : 'none',
      ]),
    );
  }
  out.push('', '✗: did not keep up at that rate. Resident memory (largest over rounds, MiB):', '');
  out.push(
    row(['Variant', 'processes']),
    row(['---', '---']),
    ...Object.entries(f.rssMiB).map(([v, by]) =>
      row([
        `\`${v}\``,
        Object.entries(by)
          .map(([side, mib]) => `${side} ${formatValue(mib)}`)
          .join(', '),
      ]),
    ),
  );
  if (f.chain) out.push('', ...sidecarChainSection(f.chain));
  if (f.profile) {
    out.push('', '### Where @shop/auth’s hop spends CPU at 1000 req/s (V8 CPU profiles, self time, idle left out)', '');
    for (const [who, p] of [
      ['server (fastify + @shop/auth)', f.profile.server],
      ['client (load generator + undici + @shop/auth)', f.profile.client],
    ] as const) {
      out.push(
        row([`${who}: by place`, '%', 'by function', '%']),
        row(['---', '---', '---', '---']),
        ...Array.from({ length: Math.max(p.byPlace.length, p.byFunction.length) }, (_, i) =>
          row([
            p.byPlace[i]?.name ?? '',
            p.byPlace[i] ? String(p.byPlace[i].percent) : '',
            p.byFunction[i]?.name ?? '',
            p.byFunction[i] ? String(p.byFunction[i].percent) : '',
          ]),
        ),
        '',
        `${p.samples} samples. Native work V8 cannot attribute to a function (OpenSSL, the network) shows as \`(program)\`; \`(garbage collector)\` is GC.`,
        '',
      );
    }
  }
  return out;
}

function ratioText(x: Spread): string {
  return Number.isFinite(x.median) ? `${x.median.toFixed(2)}× (${x.min.toFixed(2)}–${x.max.toFixed(2)})` : '–';
}

/**
 * sidecarChainSection is the Markdown of the chain with real SPIRE: per
 * variant the order latencies, achieved rate, failed orders, CPU per order
 * of the path (services + ghostunnels) and of the SPIRE agents apart, each
 * process's CPU and memory, and the paired ratios sidecars/in-process.
 */
export function sidecarChainSection(c: SidecarChainFigures): string[] {
  const out: string[] = [
    `### The chain at ${c.rate} orders/s: mTLS in-process vs sidecars on every hop (real SPIRE)`,
    '',
    row([
      'Variant',
      'achieved orders/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'failed',
      'overflow',
      `CPU µs/order, ${PATH_TOTAL}`,
      `CPU µs/order, ${SPIRE_AGENTS} (apart)`,
    ]),
    row(['---', '---', '---', '---', '---', '---', '---', '---', '---']),
  ];
  for (const v of c.variants) {
    out.push(
      row([
        `\`${v.id}\``,
        formatValue(v.achieved),
        formatValue(v.p50),
        formatValue(v.p99),
        formatValue(v.p999),
        String(v.failed),
        String(v.overflow),
        v.cpuUs[PATH_TOTAL] === undefined ? '–' : formatValue(v.cpuUs[PATH_TOTAL]),
        v.cpuUs[SPIRE_AGENTS] === undefined ? '–' : formatValue(v.cpuUs[SPIRE_AGENTS]),
      ]),
    );
  }
  out.push(
    '',
    `Sidecars / in-process, paired round by round over ${c.rounds} rounds (median, min–max): p50 ${ratioText(c.ratio.p50)}, p99 ${ratioText(c.ratio.p99)}, p99.9 ${ratioText(c.ratio.p999)}, CPU per order of the path ${ratioText(c.ratio.pathCpu)}, achieved rate ${ratioText(c.ratio.achieved)}.`,
    '',
    row(['Variant', 'CPU µs/order by process', 'RSS MiB by process (largest over rounds)']),
    row(['---', '---', '---']),
  );
  const skip = new Set([PATH_TOTAL, SPIRE_AGENTS]);
  for (const v of c.variants) {
    out.push(
      row([
        `\`${v.id}\``,
        Object.entries(v.cpuUs)
          .filter(([side]) => !skip.has(side))
          .map(([side, us]) => `${side} ${formatValue(us)}`)
          .join(', '),
        Object.entries(v.rssMiB)
          .map(([side, mib]) => `${side} ${formatValue(mib)}`)
          .join(', '),
      ]),
    );
  }
  out.push(
    '',
    `Load average ${c.loadAverage.join(' / ')} when the chain started; SVID TTL ${c.svidTtl} s. One machine, loopback, 2 cores shared by the load generator, SPIRE and every process measured.`,
  );
  return out;
}

/** sidecarChart draws total CPU per request and p99 per variant at each rate, and handshakes per second. */
export function sidecarChart(title: string, s: ScenarioResult): string {
  const f = s.extra?.sidecar as SidecarFigures;
  const rates = [...new Set(f.rates.map((r) => r.rate))];
  const bars = (pick: (r: SidecarFigures['rates'][number]) => number): Bar[] =>
    rates.flatMap((rate) =>
      f.rates
        .filter((r) => r.rate === rate)
        .map((r) => ({ label: `${rate}/s ${r.variant}`, value: pick(r), color: COLOR[r.variant] ?? COLORS.node })),
    );
  const hs: Group | undefined = s.groups.find((g) => g.id === 'handshakes');
  return barChart(
    title,
    [
      { title: 'total CPU per request, every process on the path', unit: 'µs', bars: bars((r) => r.totalCpuUs) },
      { title: 'p99 latency from the intended send time', unit: 'ms', bars: bars((r) => r.p99) },
      ...(hs
        ? [
            {
              title: hs.title.split(':')[0] ?? 'full handshakes',
              unit: hs.unit,
              bars: hs.variants.map((v) => ({
                label: v.label.length > 54 ? `${v.label.slice(0, 52)}…` : v.label,
                value: v.throughput.median,
                min: v.throughput.min,
                max: v.throughput.max,
                color:
                  v.id.includes('ghostunnel') || v.id.includes('go')
                    ? COLORS.go
                    : v.id.includes('auth')
                      ? COLORS.auth
                      : COLORS.node,
              })),
            },
          ]
        : []),
      ...(f.chain
        ? [
            {
              title: `the chain at ${f.chain.rate} orders/s: CPU per order, services + ghostunnels`,
              unit: 'µs',
              bars: f.chain.variants.map((v) => ({
                label: v.id,
                value: v.cpuUs[PATH_TOTAL] ?? 0,
                color: v.id === 'sidecars' ? COLORS.go : COLORS.auth,
              })),
            },
            {
              title: `the chain at ${f.chain.rate} orders/s: p99 per order`,
              unit: 'ms',
              bars: f.chain.variants.map((v) => ({
                label: v.id,
                value: v.p99,
                color: v.id === 'sidecars' ? COLORS.go : COLORS.auth,
              })),
            },
          ]
        : []),
    ],
    'Medians over rounds. Grey: plaintext; blue: raw Node mTLS; orange: @shop/auth in-process; green: ghostunnel / Go.',
  );
}
