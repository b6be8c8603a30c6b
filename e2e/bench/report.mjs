// What the browser benchmarks share: summary statistics and where their reports go.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACTS_DIR } from '../lib/app.mjs';

/** Runs, min, median, p90 (nearest rank), max and mean of some millisecond samples. */
export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  const median = sorted.length % 2
    ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const round = (ms) => Math.round(ms * 10) / 10;
  return {
    runs: sorted.length,
    min_ms: round(sorted[0]),
    median_ms: round(median),
    p90_ms: round(rank(90)),
    max_ms: round(sorted[sorted.length - 1]),
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/** Writes `report` as artifacts/NAME.json, and a copy named after the build (NAME.release.json). */
export async function writeReport(name, build, report) {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  await writeFile(join(ARTIFACTS_DIR, `${name}.json`), json);
  await writeFile(join(ARTIFACTS_DIR, `${name}.${build}.json`), json);
  console.log(`wrote ${join(ARTIFACTS_DIR, `${name}.json`)}`);
}
