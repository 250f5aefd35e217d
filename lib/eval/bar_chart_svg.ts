/** A grouped bar chart as a standalone SVG string (no dependencies). */

import { COLORS, esc } from "./svg_parts.ts";

/** One series: a name and one value per group. */
export interface BarSeries {
  name: string;
  values: number[];
}

/**
 * Grouped bars (values in 0..100) with a dashed reference line (e.g. the dense model) and a
 * legend. `groups` label the x axis; each series has one value per group.
 */
export function barChartSvg(
  title: string,
  groups: string[],
  series: BarSeries[],
  reference: number,
): string {
  const W = 720, H = 360, left = 50, right = 190, top = 40, bottom = 40;
  const pw = W - left - right, ph = H - top - bottom;
  const gw = pw / Math.max(1, groups.length);
  const bw = (gw * 0.8) / Math.max(1, series.length);
  const y = (v: number) => top + ph - (Math.max(0, Math.min(100, v)) / 100) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15">${esc(title)}</text>`,
  ];
  for (let v = 0; v <= 100; v += 20) {
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  groups.forEach((g, gi) => {
    const x0 = left + gi * gw + gw * 0.1;
    series.forEach((s, si) => {
      const v = s.values[gi];
      if (!Number.isFinite(v)) return;
      const x = x0 + si * bw;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" ` +
          `height="${(top + ph - y(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}">` +
          `<title>${esc(s.name)}: ${v.toFixed(1)}</title></rect>`,
        `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" ` +
          `text-anchor="middle" font-size="9">${v.toFixed(0)}</text>`,
      );
    });
    out.push(
      `<text x="${(left + gi * gw + gw / 2).toFixed(1)}" y="${H - 15}" text-anchor="middle">${
        esc(g)
      }</text>`,
    );
  });
  out.push(
    `<line x1="${left}" x2="${left + pw}" y1="${y(reference)}" y2="${y(reference)}" ` +
      `stroke="black" stroke-dasharray="5,4"/>`,
    `<text x="${left + pw + 6}" y="${y(reference) + 4}">dense ${reference.toFixed(1)}</text>`,
  );
  series.forEach((s, si) => {
    const ly = top + 30 + si * 18;
    out.push(
      `<rect x="${left + pw + 6}" y="${ly - 10}" width="12" height="12" fill="${
        COLORS[si % COLORS.length]
      }"/>`,
      `<text x="${left + pw + 24}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}
