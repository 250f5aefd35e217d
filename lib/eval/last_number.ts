/**
 * GSM8K-style answer checking: the last number in a generated answer compared with the gold
 * answer (lm-eval-harness "flexible extract": commas and a leading "$" ignored).
 */

/** The last number in `text` with thousands separators removed, or null when there is none. */
export function lastNumber(text: string): string | null {
  const all = text.match(/-?\$?\d[\d,]*(?:\.\d+)?/g);
  if (!all) return null;
  return all[all.length - 1].replace(/[$,]/g, "");
}

/** Whether `generated`'s last number equals `answer` numerically ("72.0" = "72" = "72"). */
export function lastNumberMatches(generated: string, answer: string): boolean {
  const got = lastNumber(generated);
  const want = lastNumber(answer);
  return got !== null && want !== null && Number(got) === Number(want);
}
