/**
 * A synthetic atlas: invented countries and their capitals. The facts exist only in this
 * suite's training data, so a model that answers them learned them here.
 */

import { Rng } from "./rng.ts";

/** One invented country and its capital. */
export interface AtlasEntry {
  country: string;
  capital: string;
}

const COUNTRY_HEADS = ["Zor", "Vel", "Mar", "Tes", "Quon", "Bral", "Kest", "Ulm", "Dar", "Fen"];
const COUNTRY_TAILS = ["avia", "onia", "esh", "istan", "land", "oria", "uba", "ery"];
const CAPITAL_HEADS = ["Pel", "Ost", "Lum", "Kar", "Seb", "Tir", "Nov", "Gal", "Rho", "Wen"];
const CAPITAL_TAILS = ["mor", "ford", "ith", "ana", "burg", "ton", "ora", "ek"];

/** Number of countries in the atlas. */
export const ATLAS_SIZE = 40;

function buildAtlas(): AtlasEntry[] {
  const rng = new Rng(20260101);
  const countries = new Set<string>();
  const capitals = new Set<string>();
  const out: AtlasEntry[] = [];
  while (out.length < ATLAS_SIZE) {
    const country = rng.pick(COUNTRY_HEADS) + rng.pick(COUNTRY_TAILS);
    const capital = rng.pick(CAPITAL_HEADS) + rng.pick(CAPITAL_TAILS);
    if (countries.has(country) || capitals.has(capital)) continue;
    countries.add(country);
    capitals.add(capital);
    out.push({ country, capital });
  }
  return out;
}

/** The fixed atlas (same on every run). */
export const ATLAS: readonly AtlasEntry[] = buildAtlas();
