/** A line chart (one or more series over a shared x axis) as a standalone SVG string. */

/** One series of (x, y) points. */
export interface LineSeries {
  name: string;
  points: [number, number][];
}

const COLORS = ["#1976d2", "#c62828", "#2e7d32", "#f57c00", "#7b1fa2"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function nice(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * Lines with axes from 0 to the largest x and y, five labelled ticks per axis and a legend.
 * @param title chart title @param xLabel x axis label @param yLabel y axis label
 */
export function lineChartSvg(
  title: string,
  xLabel: string,
  yLabel: string,
  series: LineSeries[],
): string {
  const W = 720, H = 360, left = 70, right = 170, top = 40, bottom = 50;
  const pw = W - left - right, ph = H - top - bottom;
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1e-9, ...all.map((p) => p[0]));
  const yMax = Math.max(1e-9, ...all.map((p) => p[1])) * 1.1;
  const x = (v: number) => left + (v / xMax) * pw;
  const y = (v: number) => top + ph - (v / yMax) * ph;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - right / 2}" y="22" text-anchor="middle" font-size="15">${
      esc(title)
    }</text>`,
    `<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const xv = (xMax * i) / 5, yv = (yMax * i) / 5;
    out.push(
      `<text x="${x(xv)}" y="${top + ph + 16}" text-anchor="middle">${nice(xv)}</text>`,
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
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    out.push(
      `<path d="${d.join(" ")}" fill="none" stroke="${c}" stroke-width="2"/>`,
      `<rect x="${W - right + 12}" y="${top + i * 20}" width="12" height="12" fill="${c}"/>`,
      `<text x="${W - right + 30}" y="${top + i * 20 + 10}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}
