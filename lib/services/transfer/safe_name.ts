/**
 * Turns a name chosen by a remote sender into a safe relative path: never
 * absolute, never `..`, no control characters, bounded lengths. Whatever the
 * input, the result stays inside the folder it is joined to (symlinks are
 * checked separately, when the path is created).
 *
 * @module
 */

/** The longest component kept, in UTF-16 code units (most file systems allow 255 bytes). */
export const MAX_COMPONENT_LENGTH = 200;
/** The most components kept. */
export const MAX_DEPTH = 32;
/**
 * The name of the inbox's internal folder. Every component that starts
 * with {@linkcode RESERVED_PREFIX} gets a leading `_`, so no sender's name
 * or file name can reach it.
 */
export const INTERNAL_NAME = ".ovtp-internal";
/** Components starting with this (in any case or Unicode form) are renamed. */
export const RESERVED_PREFIX = ".ovtp";

// Windows opens a device, not a file, for these names, with any extension
// ("nul.txt" too). They get a leading "_" everywhere, so a transfer lands
// under the same name on every system.
const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;
// Characters Windows refuses in file names (besides the separators and ":").
const WINDOWS_FORBIDDEN = /[<>"|?*]/g;

/**
 * Sanitizes a `/`- or `\`-separated relative path into its safe components.
 * Empty, `.` and `..` components are dropped, control characters (and `:`)
 * become `_`, Windows device names get a leading `_`, long components are
 * cut, and an empty result becomes `unnamed`. Components starting with
 * `.ovtp` (any case, any Unicode form: the inbox's internal folder) get a
 * leading `_` too. On Windows, `<>"|?*` also become `_`.
 */
export function safeRelativePath(name: string): string[] {
  const parts: string[] = [];
  for (const raw of name.split(/[/\\]+/)) {
    let part = "";
    for (const char of raw) {
      const code = char.codePointAt(0)!;
      part += code < 0x20 || code === 0x7f || char === ":" ? "_" : char;
    }
    part = part.trim();
    if (!part || part === "." || part === "..") continue;
    // A trailing dot or space is dropped by Windows; a leading dot stays.
    // Any white space counts (trim() does too), or "..\ufeff." would become
    // "..\ufeff" here and "..", dropped, when sanitized again.
    part = part.replace(/[\s.]+$/, "") || "_";
    if (DEVICE_NAME.test(part) || isReserved(part)) part = `_${part}`;
    if (Deno.build.os === "windows") part = part.replace(WINDOWS_FORBIDDEN, "_");
    parts.push(cut(part, MAX_COMPONENT_LENGTH));
  }
  if (parts.length === 0) return ["unnamed"];
  return parts.slice(-MAX_DEPTH);
}

// Case-insensitive file systems (Windows, macOS) and Unicode folding must
// not turn ".OVTP-internal" or a full-width look-alike into the real folder.
function isReserved(part: string): boolean {
  return part.normalize("NFKC").toUpperCase().toLowerCase().startsWith(RESERVED_PREFIX);
}

function cut(part: string, max: number): string {
  if (part.length <= max) return part;
  const dot = part.lastIndexOf(".");
  const ext = dot > 0 && part.length - dot <= 16 ? part.slice(dot) : "";
  return part.slice(0, max - ext.length) + ext;
}

/** The candidate names for a file when `name` is taken: `a.txt`, `a (1).txt`, ... */
export function alternativeName(name: string, attempt: number): string {
  if (attempt === 0) return name;
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${attempt})${name.slice(dot)}` : `${name} (${attempt})`;
}
