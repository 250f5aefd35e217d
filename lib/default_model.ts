/** Where the embedded default model lives; serve and calibrate use it when given no model. */

/** Absolute path of the default model folder (models/seap-tiny-skills), resolved from here. */
export const DEFAULT_MODEL_DIR: string = decodeURIComponent(
  new URL("../models/seap-tiny-skills", import.meta.url).pathname,
);
