// Errors a user can act on: each names the file or folder and what is wrong with it.

export class DatasetError extends Error {
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The folder is not in a layout we read, or a file the layout requires is absent. */
export class DatasetLayoutError extends DatasetError {
  constructor(path: string, readonly missing: string, detail?: string) {
    super(`${path}: ${missing}${detail ? ` (${detail})` : ''}`, path);
  }
}

/** A file exists but its content does not parse or violates the format. */
export class DatasetFormatError extends DatasetError {
  constructor(path: string, readonly field: string, detail: string) {
    super(`${path}: ${field}: ${detail}`, path);
  }
}
