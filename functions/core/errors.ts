/**
 * Typed errors shared by every layer. Each carries a stable machine-readable `code` and the HTTP
 * status a handler should answer with, so one function can map any error to a response
 * (see DESIGN.md "Conventions"). Messages are written for the person who has to fix the input.
 */
export class BisearchError extends Error {
  /** Stable identifier, e.g. `DOCUMENT_INVALID`; safe to show to API clients. */
  readonly code: string;
  /** HTTP status a handler answers with when this error reaches it. */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** A document (or one line of a JSON Lines file, one row of a CSV file) could not be parsed; names the file and line. */
export class DocumentParseError extends BisearchError {
  /** The source file name as given by the caller. */
  readonly fileName: string;
  /** 1-based line of a JSON Lines line or the line a CSV row starts on; undefined for whole-file errors. */
  readonly line: number | undefined;

  /** What is wrong, without the file and line. */
  readonly reason: string;
  /** The document id the failure belongs to, when it could be read (a JSON Lines line or CSV row with an id). */
  readonly documentId: string | undefined;

  /**
   * @param reason says what is wrong without quoting the document's content (messages reach logs).
   * @param options.code stable code; default `DOCUMENT_INVALID` (`DOCUMENT_EMPTY`, `DOCUMENT_ID_DUPLICATE`…).
   */
  constructor(
    fileName: string,
    line: number | undefined,
    reason: string,
    options?: { cause?: unknown; code?: string; documentId?: string },
  ) {
    super(
      options?.code ?? 'DOCUMENT_INVALID',
      400,
      `${fileName}${line === undefined ? '' : `:${line}`}: ${reason}`,
      options,
    );
    this.fileName = fileName;
    this.line = line;
    this.reason = reason;
    this.documentId = options?.documentId;
  }
}

/** The request itself is malformed (bad k, unknown mode, bad filter, empty query...). */
export class InvalidRequestError extends BisearchError {
  constructor(message: string) {
    super('INVALID_REQUEST', 400, message);
  }
}

/** A snapshot on disk is not what its manifest promises (checksum, counts, format, header). */
export class SnapshotIntegrityError extends BisearchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SNAPSHOT_CORRUPT', 500, message, options);
  }
}

/**
 * A snapshot or stored vector was built with a different embedding space than the running model
 * (model id, dimensions, pooling or normalisation): mixing them would silently return garbage.
 */
export class EmbeddingSpaceMismatchError extends BisearchError {
  constructor(message: string) {
    super('EMBEDDING_SPACE_MISMATCH', 500, message);
  }
}

/** No usable model directory could be found or fetched. The message names the variable to set. */
export class ModelUnavailableError extends BisearchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_UNAVAILABLE', 503, message, options);
  }
}

/** A model directory exists but its files are inconsistent or unsupported. */
export class ModelConfigurationError extends BisearchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_INVALID', 500, message, options);
  }
}
