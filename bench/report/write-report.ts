// Writes a run: <stamp>.json (every figure), <stamp>.md (the report),
// <stamp>/<scenario>.svg (its charts) and, for bench/results, latest.md.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResult } from '../run.ts';
import { scenarioChart } from './charts.ts';
import { renderMarkdown, summaryTable } from './markdown.ts';

/** Written lists the files a run produced, and the summary table to print. */
export interface Written {
  json: string;
  markdown: string;
  summary: string;
}

/** stampFor is the run's date (YYYY-MM-DD), with -2, -3… when that name is taken in `dir`. */
export function stampFor(startedAt: string, dir: string): string {
  const date = startedAt.slice(0, 10);
  let stamp = date;
  for (let i = 2; existsSync(join(dir, `${stamp}.json`)); i++) stamp = `${date}-${i}`;
  return stamp;
}

/** writeReport writes the run to `outDir`; `updateLatest` also points latest.md at it. */
export async function writeReport(run: RunResult, outDir: string, o: { updateLatest: boolean }): Promise<Written> {
  await mkdir(outDir, { recursive: true });
  const stamp = stampFor(run.startedAt, outDir);
  const charts: Record<string, string> = {};
  for (const s of run.scenarios) {
    const svg = scenarioChart(s);
    if (!svg) continue;
    await mkdir(join(outDir, stamp), { recursive: true });
    await writeFile(join(outDir, stamp, `${s.id}.svg`), svg);
    charts[s.id] = `${stamp}/${s.id}.svg`;
  }
  const json = join(outDir, `${stamp}.json`);
  const markdown = join(outDir, `${stamp}.md`);
  await writeFile(json, `${JSON.stringify(run, null, 2)}\n`);
  await writeFile(markdown, renderMarkdown(run, stamp, charts));
  const summary = summaryTable(run).join('\n');
  if (o.updateLatest) {
    await writeFile(
      join(outDir, 'latest.md'),
      [
        '# Latest benchmark',
        '',
        `The newest full run is [${stamp}](${stamp}.md) (${run.machine.cpus} × ${run.machine.model}, Node ${run.machine.node}, ${run.seconds} s). How to run and read it: [docs/performance.md](../../docs/performance.md).`,
        '',
        summary,
        '',
      ].join('\n'),
    );
  }
  return { json, markdown, summary: `${summary}\n` };
}
