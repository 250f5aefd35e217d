/** A line chart (one or more series over a shared x axis) as a standalone SVG string. */

import { esc } from "./svg_parts.ts";

/** One series of (x, y) points; points whose y is not finite are skipped. */
export interface LineSeries {
  name: string;
  points: [number, number][];
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  /** Fixed y range (e.g. [0, 100] for accuracy in %); default 0 to 1.1 x the largest y. */
  yRange?: [number, number];
  /** A dashed horizontal reference line with its label (e.g. the dense model). */
  reference?: { y: number; label: string } | null;
}

const COLORS = ["#1976d2", "#c62828", "#2e7d32", "#f57c00", "#7b1fa2", "#795548", "#9e9e9e"];

function nice(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * Lines with axes from 0 (or the smallest x / the y range) to the largest x and y, a legend,
 * and an optional reference line. The x ticks sit at the data's x values when there are at
 * most ten of them (e.g. the shares of an accuracy curve), else at five even steps; series of
 * at most 30 points also get a marker per point.
 * @param title chart title @param xLabel x axis label @param yLabel y axis label
 */
export function lineChartSvg(
  title: string,
  xLabel: string,
  yLabel: string,
  series: LineSeries[],
  opts: LineChartOptions = {},
): string {
  const W = 760, H = 380, left = 70, right = 190, top = 40, bottom = 50;
  const pw = W - left - right, ph = H - top - bottom;
  const pts = (s: LineSeries) => s.points.filter((p) => Number.isFinite(p[1]));
  const all = series.flatMap(pts);
  const xMin = Math.min(0, ...all.map((p) => p[0]));
  const xMax = Math.max(xMin + 1e-9, ...all.map((p) => p[0]));
  const [yMin, yMax] = opts.yRange ??
    [0, Math.max(1e-9, ...all.map((p) => p[1]), opts.reference?.y ?? 0) * 1.1];
  const x = (v: number) => left + ((v - xMin) / (xMax - xMin)) * pw;
  const y = (v: number) =>
    top + ph - ((Math.min(yMax, Math.max(yMin, v)) - yMin) / (yMax - yMin)) * ph;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - right / 2}" y="22" text-anchor="middle" font-size="15">${
      esc(title)
    }</text>`,
    `<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="#333"/>`,
  ];
  const xs = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  const xTicks = xs.length <= 10 ? xs : [0, 1, 2, 3, 4, 5].map((i) => xMin + (xMax - xMin) * i / 5);
  for (const xv of xTicks) {
    out.push(`<text x="${x(xv)}" y="${top + ph + 16}" text-anchor="middle">${nice(xv)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const yv = yMin + ((yMax - yMin) * i) / 5;
    out.push(
      `<line x1="${left}" y1="${y(yv)}" x2="${left + pw}" y2="${y(yv)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y(yv) + 4}" text-anchor="end">${nice(yv)}</text>`,
    );
  }
  out.push(
    `<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle">${
      esc(yLabel)
    }</text>`,
  );
  const ref = opts.reference;
  if (ref && Number.isFinite(ref.y)) {
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${y(ref.y)}" y2="${y(ref.y)}" ` +
        `stroke="black" stroke-dasharray="5,4"/>`,
      `<text x="${left + 4}" y="${y(ref.y) - 4}">${esc(ref.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const p = pts(s).sort((a, b) => a[0] - b[0]);
    const d = p.map((q, j) => `${j ? "L" : "M"}${x(q[0]).toFixed(1)},${y(q[1]).toFixed(1)}`);
    if (p.length > 1) {
      out.push(`<path d="${d.join(" ")}" fill="none" stroke="${c}" stroke-width="2"/>`);
    }
    if (p.length <= 30) {
      for (const q of p) {
        out.push(
          `<circle cx="${x(q[0]).toFixed(1)}" cy="${y(q[1]).toFixed(1)}" r="3.5" fill="${c}">` +
            `<title>${esc(s.name)} @ ${q[0]}: ${nice(q[1])}</title></circle>`,
        );
      }
    }
    out.push(
      `<rect x="${W - right + 12}" y="${top + i * 20}" width="12" height="12" fill="${c}"/>`,
      `<text x="${W - right + 30}" y="${top + i * 20 + 10}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}
