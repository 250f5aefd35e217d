/** Pieces shared by the project's hand-written SVG charts (no dependencies). */

/** Series colours, in order. */
export const COLORS = [
  "#9e9e9e",
  "#795548",
  "#1976d2",
  "#2e7d32",
  "#f57c00",
  "#7b1fa2",
  "#c62828",
  "#00838f",
  "#ad1457",
  "#827717",
  "#283593",
  "#4e342e",
];

/** Escape text for SVG/XML content and attributes. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** Opening `<svg>` element with a white background and an optional title. */
export function svgOpen(width: number, height: number, title = "", fontSize = 12): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="${fontSize}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (title) out.push(`<text x="10" y="20" font-size="15">${esc(title)}</text>`);
  return out;
}

/** A legend: one coloured square and name per entry, stacked from (x, y). */
export function legend(names: string[], x: number, y: number, colors = COLORS): string[] {
  return names.flatMap((n, i) => [
    `<rect x="${x}" y="${y + i * 18 - 10}" width="12" height="12" fill="${
      colors[i % colors.length]
    }"/>`,
    `<text x="${x + 18}" y="${y + i * 18}">${esc(n)}</text>`,
  ]);
}
