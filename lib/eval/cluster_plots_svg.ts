/**
 * 2-D projections of labelled samples as small multiples (the clustering analysis).
 */

import { COLORS, esc, legend, svgOpen } from "./svg_parts.ts";

/** One scatter panel: a title and `[N, 2]` points. */
export interface ScatterPanel {
  title: string;
  points: Float64Array; // [N, 2]
}

/** Small multiples of 2-D scatter plots sharing one labelling and legend. */
export function scatterPanelsSvg(
  title: string,
  panels: ScatterPanel[],
  labels: ArrayLike<number>,
  names: string[],
): string {
  const size = 240, gap = 16, top = 36, legendW = 150;
  const cols = Math.min(panels.length, 4);
  const rows = Math.ceil(panels.length / cols);
  const W = cols * (size + gap) + gap + legendW;
  const H = top + rows * (size + gap + 14) + gap;
  const out = svgOpen(W, H, title, 11);
  panels.forEach((p, pi) => {
    const x0 = gap + (pi % cols) * (size + gap);
    const y0 = top + 14 + Math.floor(pi / cols) * (size + gap + 14);
    const n = p.points.length / 2;
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      minX = Math.min(minX, p.points[2 * i]);
      maxX = Math.max(maxX, p.points[2 * i]);
      minY = Math.min(minY, p.points[2 * i + 1]);
      maxY = Math.max(maxY, p.points[2 * i + 1]);
    }
    const sx = (v: number) => x0 + 6 + ((v - minX) / (maxX - minX || 1)) * (size - 12);
    const sy = (v: number) => y0 + size - 6 - ((v - minY) / (maxY - minY || 1)) * (size - 12);
    out.push(
      `<rect x="${x0}" y="${y0}" width="${size}" height="${size}" fill="none" stroke="#ccc"/>`,
      `<text x="${x0}" y="${y0 - 4}">${esc(p.title)}</text>`,
    );
    for (let i = 0; i < n; i++) {
      out.push(
        `<circle cx="${sx(p.points[2 * i]).toFixed(1)}" cy="${
          sy(p.points[2 * i + 1]).toFixed(1)
        }" r="2.5" fill="${COLORS[labels[i] % COLORS.length]}" fill-opacity="0.75"/>`,
      );
    }
  });
  out.push(...legend(names, W - legendW + 4, top + 20), "</svg>");
  return out.join("\n");
}
