/** A labelled heatmap (values 0..100, e.g. a transfer matrix) as a standalone SVG string. */

import { esc } from "./svg_parts.ts";

/** White (0) to dark blue (100). */
function color(v: number): string {
  const t = Math.max(0, Math.min(1, v / 100));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 13)},${mix(255, 71)},${mix(255, 161)})`;
}

/**
 * `values[r][c]` in 0..100 (NaN: empty cell) under row and column labels; the cell text is the
 * value, cells on the diagonal `rows[r] === cols[c]` are outlined (a task's own mask on its own
 * task).
 */
export function heatmapSvg(
  title: string,
  rowLabel: string,
  colLabel: string,
  rows: string[],
  cols: string[],
  values: number[][],
): string {
  const cell = 46, left = 150, top = 120;
  const W = left + cols.length * cell + 20, H = top + rows.length * cell + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="10" y="20" font-size="15">${esc(title)}</text>`,
    `<text x="10" y="${top - 8}" font-weight="bold">${esc(rowLabel)} ↓ / ${esc(colLabel)} →</text>`,
  ];
  cols.forEach((c, j) => {
    const cx = left + j * cell + cell / 2;
    out.push(
      `<text transform="translate(${cx} ${top - 6}) rotate(-45)">${esc(c)}</text>`,
    );
  });
  const outlines: string[] = []; // drawn last so neighbouring cells do not cover them
  rows.forEach((r, i) => {
    const y = top + i * cell;
    out.push(`<text x="${left - 6}" y="${y + cell / 2 + 4}" text-anchor="end">${esc(r)}</text>`);
    cols.forEach((c, j) => {
      const v = values[i][j];
      const x = left + j * cell;
      const fill = Number.isFinite(v) ? color(v) : "#f0f0f0";
      if (r === c) {
        outlines.push(
          `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="none" ` +
            `stroke="#c62828" stroke-width="2.5"/>`,
        );
      }
      out.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="white">` +
          `<title>${esc(r)} on ${esc(c)}: ${
            Number.isFinite(v) ? v.toFixed(1) : "n/a"
          }</title></rect>`,
      );
      if (Number.isFinite(v)) {
        out.push(
          `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${
            v > 55 ? "white" : "black"
          }">${v.toFixed(0)}</text>`,
        );
      }
    });
  });
  out.push(...outlines, "</svg>");
  return out.join("\n");
}
