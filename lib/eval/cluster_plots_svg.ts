/**
 * Plots of the clustering analysis: 2-D projections of labelled samples as small multiples,
 * and a per-layer line chart of separation scores.
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

/** One line: a name and one value per x. */
export interface LineSeries {
  name: string;
  values: number[];
}

/**
 * Lines over integer x positions labelled `xLabels`, y from `yMin` to `yMax`, with an optional
 * vertical marker (e.g. the router's layer).
 */
export function lineChartSvg(
  title: string,
  xLabels: string[],
  series: LineSeries[],
  opts: { yMin: number; yMax: number; yLabel: string; marker?: { x: number; label: string } },
): string {
  const W = 780, H = 340, left = 56, right = 260, top = 40, bottom = 44;
  const pw = W - left - right, ph = H - top - bottom;
  const x = (i: number) => left + (xLabels.length > 1 ? (i / (xLabels.length - 1)) * pw : pw / 2);
  const y = (v: number) =>
    top + ph - ((Math.min(opts.yMax, Math.max(opts.yMin, v)) - opts.yMin) /
        (opts.yMax - opts.yMin)) * ph;
  const out = svgOpen(W, H, title);
  for (let k = 0; k <= 4; k++) {
    const v = opts.yMin + (k / 4) * (opts.yMax - opts.yMin);
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`,
    );
  }
  xLabels.forEach((l, i) =>
    out.push(`<text x="${x(i)}" y="${H - bottom + 16}" text-anchor="middle">${esc(l)}</text>`)
  );
  out.push(
    `<text x="${left + pw / 2}" y="${H - 8}" text-anchor="middle">layer</text>`,
    `<text x="14" y="${top + ph / 2}" transform="rotate(-90 14 ${
      top + ph / 2
    })" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  if (opts.marker) {
    const mx = x(opts.marker.x);
    out.push(
      `<line x1="${mx}" x2="${mx}" y1="${top}" y2="${
        top + ph
      }" stroke="black" stroke-dasharray="4,4"/>`,
      `<text x="${mx + 4}" y="${top + 12}">${esc(opts.marker.label)}</text>`,
    );
  }
  series.forEach((s, si) => {
    const c = COLORS[(si + 2) % COLORS.length];
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    out.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${c}" stroke-width="2"/>`);
    s.values.forEach((v, i) =>
      out.push(
        `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${c}">` +
          `<title>${esc(s.name)} ${esc(xLabels[i])}: ${v.toFixed(3)}</title></circle>`,
      )
    );
  });
  out.push(
    ...legend(series.map((s) => s.name), left + pw + 12, top + 20, [...COLORS.slice(2), ...COLORS]),
  );
  out.push("</svg>");
  return out.join("\n");
}
