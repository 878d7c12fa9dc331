// Horizontal bar charts as plain SVG, written by hand so they render on
// GitHub (as images referenced from Markdown) with no chart library.

/** Bar is one bar: a median with an optional min–max whisker. */
export interface Bar {
  label: string;
  value: number;
  min?: number;
  max?: number;
  color: string;
}

/** Panel is one titled set of bars on a shared scale. */
export interface Panel {
  title: string;
  unit: string;
  bars: Bar[];
}

/** COLORS tell variants apart the same way in every chart. */
export const COLORS = {
  baseline: '#8c96a3',
  node: '#4a78b5',
  auth: '#d9822b',
  go: '#2a9d8f',
} as const;

const WIDTH = 900;
const LABEL_W = 360;
const BAR_W = 400;
const ROW_H = 22;
const FONT = 'font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

/** escapeXml makes text safe inside SVG elements and attributes. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** formatValue prints a figure with about three significant digits. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** barChart draws `panels` one under the other, each with its own scale, under `title`. */
export function barChart(title: string, panels: Panel[], footnote?: string): string {
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="12" y="20" font-size="14" font-weight="600" ${FONT}>${escapeXml(title)}</text>`);
  for (const panel of panels) {
    y += 12;
    parts.push(
      `<text x="12" y="${y + 4}" font-size="12.5" font-weight="600" fill="#333" ${FONT}>${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`,
    );
    y += 12;
    const top = Math.max(
      ...panel.bars.map((b) => (Number.isFinite(b.max) ? (b.max ?? 0) : 0)),
      ...panel.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)),
      1e-9,
    );
    const scale = BAR_W / top;
    for (const b of panel.bars) {
      const w = Number.isFinite(b.value) ? Math.max(1, b.value * scale) : 0;
      const cy = y + ROW_H / 2;
      parts.push(
        `<text x="${LABEL_W - 8}" y="${cy + 4}" font-size="12" text-anchor="end" fill="#222" ${FONT}>${escapeXml(b.label)}</text>`,
        `<rect x="${LABEL_W}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}" fill="${b.color}" rx="2"/>`,
      );
      if (b.min !== undefined && b.max !== undefined && Number.isFinite(b.min) && Number.isFinite(b.max)) {
        const x1 = LABEL_W + b.min * scale;
        const x2 = LABEL_W + b.max * scale;
        parts.push(
          `<line x1="${x1.toFixed(1)}" y1="${cy}" x2="${x2.toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1"/>`,
          `<line x1="${x1.toFixed(1)}" y1="${cy - 4}" x2="${x1.toFixed(1)}" y2="${cy + 4}" stroke="#222" stroke-width="1"/>`,
          `<line x1="${x2.toFixed(1)}" y1="${cy - 4}" x2="${x2.toFixed(1)}" y2="${cy + 4}" stroke="#222" stroke-width="1"/>`,
        );
      }
      const tx = LABEL_W + Math.max(w, Number.isFinite(b.max) ? (b.max ?? 0) * scale : 0) + 6;
      parts.push(
        `<text x="${tx.toFixed(1)}" y="${cy + 4}" font-size="12" fill="#222" ${FONT}>${formatValue(b.value)}</text>`,
      );
      y += ROW_H;
    }
  }
  y += 8;
  if (footnote) {
    y += 10;
    parts.push(`<text x="12" y="${y}" font-size="11" fill="#555" ${FONT}>${escapeXml(footnote)}</text>`);
    y += 6;
  }
  const height = y + 8;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
