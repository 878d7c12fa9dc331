// The sidecar report's chain section: one row per variant with the path's
// CPU per order and the SPIRE agents' apart, the paired ratios with their
// min–max, and each process's CPU and memory.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sidecarChainSection } from '../report/sidecar-report.ts';
import { PATH_TOTAL, SPIRE_AGENTS, type SidecarChainFigures } from '../scenarios/sidecar-chain.ts';

const figures: SidecarChainFigures = {
  rate: 100,
  rounds: 3,
  svidTtl: 60,
  loadAverage: [1.5, 1.2, 1],
  variants: [
    {
      id: 'in-process',
      label: 'in-process',
      achieved: 99.8,
      p50: 4.1,
      p99: 9.2,
      p999: 15,
      failed: 0,
      overflow: 0,
      cpuUs: { client: 300, order: 1500, inventory: 700, payment: 600, [PATH_TOTAL]: 2800, [SPIRE_AGENTS]: 20 },
      rssMiB: { order: 120, inventory: 110, payment: 105 },
    },
    {
      id: 'sidecars',
      label: 'sidecars',
      achieved: 99.7,
      p50: 5.3,
      p99: 12.5,
      p999: 21,
      failed: 2,
      overflow: 1,
      cpuUs: { order: 1200, 'ghostunnel client → payment': 400, [PATH_TOTAL]: 3900, [SPIRE_AGENTS]: 22 },
      rssMiB: { order: 100, 'ghostunnel client → payment': 18 },
    },
  ],
  ratio: {
    p50: { median: 1.29, min: 1.2, max: 1.4 },
    p99: { median: 1.36, min: 1.1, max: 1.6 },
    p999: { median: 1.4, min: 1.3, max: 1.5 },
    pathCpu: { median: 1.39, min: 1.35, max: 1.45 },
    achieved: { median: 1, min: 0.99, max: 1.01 },
  },
};

test('sidecarChainSection: a row per variant with latencies, failures, path CPU and the agents apart', () => {
  const text = sidecarChainSection(figures).join('\n');
  assert.match(text, /^### The chain at 100 orders\/s/m);
  assert.match(text, /^\| `in-process` \| 99\.8 \| 4\.10 \| 9\.20 \| 15\.0 \| 0 \| 0 \| 2,800 \| 20\.0 \|$/m);
  assert.match(text, /^\| `sidecars` \| 99\.7 \| 5\.30 \| 12\.5 \| 21\.0 \| 2 \| 1 \| 3,900 \| 22\.0 \|$/m);
});

test('sidecarChainSection: paired ratios with min–max, per-process CPU without the sums, RSS, the load average', () => {
  const text = sidecarChainSection(figures).join('\n');
  assert.match(text, /CPU per order of the path 1\.39× \(1\.35–1\.45\)/);
  assert.match(text, /p99 1\.36× \(1\.10–1\.60\)/);
  const sidecarRow = text.split('\n').find((l) => l.startsWith('| `sidecars` | order 1,200'));
  assert.ok(sidecarRow, 'the per-process row of the sidecars');
  assert.ok(sidecarRow.includes('ghostunnel client → payment 400'));
  assert.ok(!sidecarRow.includes(PATH_TOTAL), 'the path total is not repeated among the processes');
  assert.ok(sidecarRow.includes('ghostunnel client → payment 18.0'), 'RSS per process');
  assert.match(text, /Load average 1\.5 \/ 1\.2 \/ 1 when the chain started/);
});

test('sidecarChainSection: a ratio that could not be computed reads "–", not NaN', () => {
  const text = sidecarChainSection({
    ...figures,
    ratio: { ...figures.ratio, pathCpu: { median: Number.NaN, min: Number.NaN, max: Number.NaN } },
  }).join('\n');
  assert.match(text, /CPU per order of the path –/);
  assert.ok(!text.includes('NaN'));
});
