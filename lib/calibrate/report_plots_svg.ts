/**
 * The calibration report's SVG plots (lib/calibrate/report.ts): per-layer lines (a mask's
 * sparsity by layer) and a labelled heat map of a matrix (task-mask overlap, router confusion).
 */

import { esc } from "../eval/svg_parts.ts";

const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** Line plot: one polyline per series over x = 0..n-1, y in [0, 1]. */
export function lineSvg(
  title: string,
  series: { name: string; y: number[]; dash?: boolean }[],
): string {
  const W = 640;
  const Hh = 360;
  const left = 50;
  const right = 170;
  const top = 30;
  const bottom = 40;
  const n = Math.max(1, ...series.map((s) => s.y.length));
  const px = (i: number) => left + (n === 1 ? 0 : i / (n - 1)) * (W - left - right);
  const py = (v: number) => top + (1 - v) * (Hh - top - bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  for (let i = 0; i < n; i++) {
    parts.push(`<text x="${px(i)}" y="${Hh - bottom + 14}" text-anchor="middle">${i}</text>`);
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${Hh - 6}" text-anchor="middle">layer</text>`);
  series.forEach((s, k) => {
    const c = PALETTE[k % PALETTE.length];
    const pts = s.y.map((v, i) => `${px(i).toFixed(1)},${py(v).toFixed(1)}`).join(" ");
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="1.5"${
        s.dash ? ' stroke-dasharray="4 3"' : ""
      } points="${pts}"/>`,
      `<text x="${W - right + 8}" y="${top + 12 * k + 4}" fill="${c}">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Heat map of a matrix with row/column labels and the value in each cell. */
export function heatmapSvg(
  title: string,
  labels: string[],
  m: number[][],
  fmt: (v: number) => string,
  max = Math.max(1e-12, ...m.flat()),
): string {
  const cell = 40;
  const lab = 110;
  const n = labels.length;
  const W = lab + n * cell + 20;
  const Hh = 40 + lab + n * cell;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  const y0 = 30 + lab;
  labels.forEach((l, i) => {
    parts.push(
      `<text x="${lab - 4}" y="${y0 + i * cell + cell / 2 + 3}" text-anchor="end">${esc(l)}</text>`,
      `<text transform="translate(${lab + i * cell + cell / 2 + 3},${y0 - 4}) rotate(-60)">${
        esc(l)
      }</text>`,
    );
  });
  m.forEach((row, i) =>
    row.forEach((v, j) => {
      const t = Math.max(0, Math.min(1, v / max));
      const shade = Math.round(255 - 200 * t);
      parts.push(
        `<rect x="${lab + j * cell}" y="${
          y0 + i * cell
        }" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="white"/>`,
        `<text x="${lab + j * cell + cell / 2}" y="${
          y0 + i * cell + cell / 2 + 3
        }" text-anchor="middle" fill="${t > 0.6 ? "white" : "black"}">${fmt(v)}</text>`,
      );
    })
  );
  parts.push("</svg>");
  return parts.join("\n");
}
