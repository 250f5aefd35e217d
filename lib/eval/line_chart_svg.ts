/** A line chart (one line per series over a numeric x axis) as a standalone SVG string. */

/** One line: a name and its points (NaN y values are skipped). */
export interface LineSeries {
  name: string;
  points: { x: number; y: number }[];
}

const COLORS = ["#795548", "#9e9e9e", "#1976d2", "#2e7d32", "#f57c00", "#7b1fa2", "#c62828"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Lines over x in [xMin, xMax] and y in 0..100, with an optional dashed reference line (the
 * dense model) and a legend. Axis labels name the quantities.
 */
export function lineChartSvg(
  title: string,
  xLabel: string,
  yLabel: string,
  series: LineSeries[],
  reference: number | null,
): string {
  const W = 760, H = 400, left = 56, right = 200, top = 40, bottom = 50;
  const pw = W - left - right, ph = H - top - bottom;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const xMin = Math.min(0, ...xs), xMax = Math.max(xMin + 1e-9, ...xs);
  const x = (v: number) => left + ((v - xMin) / (xMax - xMin)) * pw;
  const y = (v: number) => top + ph - (Math.max(0, Math.min(100, v)) / 100) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15">${esc(title)}</text>`,
    `<text x="${left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(14 ${top + ph / 2}) rotate(-90)" text-anchor="middle">${
      esc(yLabel)
    }</text>`,
  ];
  for (let v = 0; v <= 100; v += 20) {
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(
      `<line x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${top + ph}" stroke="#f4f4f4"/>`,
      `<text x="${x(v)}" y="${top + ph + 16}" text-anchor="middle">${Number(v.toFixed(3))}</text>`,
    );
  }
  if (reference !== null && Number.isFinite(reference)) {
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${y(reference)}" y2="${y(reference)}" ` +
        `stroke="black" stroke-dasharray="5,4"/>`,
      `<text x="${left + 4}" y="${y(reference) - 4}">dense ${reference.toFixed(1)}</text>`,
    );
  }
  series.forEach((s, si) => {
    const c = COLORS[si % COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${c}" stroke-width="2" points="${
          pts.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ")
        }"/>`,
      );
    }
    for (const p of pts) {
      out.push(
        `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3.5" fill="${c}">` +
          `<title>${esc(s.name)} @ ${p.x}: ${p.y.toFixed(1)}</title></circle>`,
      );
    }
    const ly = top + 30 + si * 18;
    out.push(
      `<rect x="${left + pw + 6}" y="${ly - 10}" width="12" height="12" fill="${c}"/>`,
      `<text x="${left + pw + 24}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}
