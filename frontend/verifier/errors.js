// A verification failure: one of the codes of docs/receipts.md §10.1 (or `genesis`), with a
// sentence for people. Steps throw it; verify.js turns it into the reported result.

export class Failure extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'Failure';
    this.code = code;
  }
}

/** Throws Failure(code, message) when `condition` is false. */
export function check(condition, code, message) {
  if (!condition) throw new Failure(code, typeof message === 'function' ? message() : message);
}
