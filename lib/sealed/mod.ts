/**
 * Sealed files ("ovtp sealed v1"): a file of any size encrypted for one or
 * many recipients and signed by its sender, streamed in 64 KiB chunks.
 * docs/protocol.md, section "Sealed files", specifies the format.
 *
 * @module
 */

export * from "./format.ts";
export * from "./errors.ts";
export * from "./stream.ts";
export * from "./armor.ts";
export * from "./seal.ts";
export * from "./open.ts";
export * from "./files.ts";
