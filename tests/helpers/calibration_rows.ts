/**
 * A small multi-task calibration set for the tiny fixture, shared by the calibration-resume test
 * and its child process: three tasks, statistics samples and router-only prompts.
 */

import type { CalibrationSample } from "../../lib/calibrate/calibration_data.ts";

const WORDS = ["the dog barks", "a cat sleeps", "birds sing now", "fish swim deep", "we go"];

function sample(task: string, prompt: string, answer: string, i: number): CalibrationSample {
  return {
    task,
    text: prompt + answer,
    prompt,
    heldOutPhrasing: i % 3 === 0,
    source: `resume:${task}:${i}`,
  };
}

/** `n` statistics samples per task and `extra` router-only prompts per task. */
export function resumeGroups(n: number, extra: number): {
  groups: Map<string, CalibrationSample[]>;
  routerOnly: Map<string, CalibrationSample[]>;
} {
  const make = (task: string, i: number) => {
    const w = WORDS[i % WORDS.length];
    if (task === "upper") return sample(task, `Upper: ${w} ->`, ` ${w.toUpperCase()} ${i}`, i);
    if (task === "count") return sample(task, `Letters in ${w}?`, ` ${w.length + i}`, i);
    return sample(task, `${w} and ${WORDS[(i + 1) % WORDS.length]}`, ` ${i}`, i);
  };
  const tasks = ["upper", "count", "general"];
  return {
    groups: new Map(tasks.map((t) => [t, Array.from({ length: n }, (_, i) => make(t, i))])),
    routerOnly: new Map(
      tasks.map((t) => [t, Array.from({ length: extra }, (_, i) => make(t, n + i))]),
    ),
  };
}
