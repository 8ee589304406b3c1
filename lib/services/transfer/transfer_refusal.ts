/**
 * The refusal a receiving server sends back to the sender of a file.
 *
 * @module
 */

import { OvtpError } from "../../errors.ts";

/** A refusal to send back to the sender, with a machine-readable code. */
export class TransferRefusal extends OvtpError {
  /** `too-large`, `no-space`, `bad-hash`, `bad-size`, `io` or `protocol`. */
  readonly code: string;

  /** Creates the refusal. */
  constructor(code: string, message: string) {
    super("remote", message);
    this.code = code;
  }
}
