/**
 * The mask room's errors. Domain code throws these; only lib/server maps them to HTTP
 * statuses (lib/server/errors.ts, `toApiError`), so calibration, evaluation and tools get
 * plain errors that say what is wrong without any notion of a request.
 */

/** A mask set that does not fit the model, or whose files are damaged or unreadable. */
export class MaskSetError extends Error {
  override name = "MaskSetError";
}

/** A mask set made for another model (fingerprint, layer count or sizes differ). */
export class MaskModelMismatchError extends MaskSetError {
  override name = "MaskModelMismatchError";
}

/** Which field of a mask request an error is about. */
export type MaskRequestField = "mask" | "sparsity";

/** A mask request naming a mask or a sparsity the catalog does not have. */
export class UnknownMaskError extends Error {
  override name = "UnknownMaskError";
  /** @param message what is missing and what is available @param field the field at fault */
  constructor(message: string, readonly field: MaskRequestField) {
    super(message);
  }
}

/** A mask request whose fields contradict each other (a named mask and another sparsity). */
export class MaskRequestConflictError extends Error {
  override name = "MaskRequestConflictError";
  /** @param message the contradiction @param field the field to drop or change */
  constructor(message: string, readonly field: MaskRequestField) {
    super(message);
  }
}
