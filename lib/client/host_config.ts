/**
 * Per-host settings in `~/.ovtp/config`, read as ssh reads `~/.ssh/config`:
 * `host PATTERN...` starts a block, the settings under it apply to every
 * host name that matches one of its patterns (`*` and `?` wildcards), and
 * for each setting the first value found wins, so specific blocks go first
 * and `host *` last.
 *
 * ```
 * host backup                  # `ovtp send backup` means:
 *   address backup.example.org #   connect to this name or address
 *                              #   (several: tried in turn while unreachable)
 *   port 4848                  #   on this port
 *   identity ~/.ovtp/work_id   #   as this identity (a key file)
 *   unknown-host ask           #   ask | accept-new | refuse
 * ```
 *
 * @module
 */

/**
 * What to do with a host that is not in known_hosts yet: ask on a terminal
 * (and refuse without one), record it, or refuse it.
 *
 * @example Resolve an alias
 * ```ts
 * import { parseHostConfig, settingsFor } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const blocks = parseHostConfig(
 *   "host backup\n  address backup.example.org\n  port 4848\nhost *\n  unknown-host refuse\n",
 * );
 * assert.deepEqual(settingsFor(blocks, "backup"), {
 *   address: "backup.example.org",
 *   port: 4848,
 *   identity: undefined,
 *   unknownHost: "refuse",
 * });
 * assert.throws(() => parseHostConfig("host a\n  adress x\n"), /line 2: Unknown setting "adress"/);
 * ```
 */
export type UnknownHostPolicy = "ask" | "accept-new" | "refuse";

/**
 * The settings that apply to one host, as {@linkcode settingsFor} gathers them.
 *
 * @example Resolve an alias
 * ```ts
 * import { parseHostConfig, settingsFor } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const blocks = parseHostConfig(
 *   "host backup\n  address backup.example.org\n  port 4848\nhost *\n  unknown-host refuse\n",
 * );
 * assert.deepEqual(settingsFor(blocks, "backup"), {
 *   address: "backup.example.org",
 *   port: 4848,
 *   identity: undefined,
 *   unknownHost: "refuse",
 * });
 * assert.throws(() => parseHostConfig("host a\n  adress x\n"), /line 2: Unknown setting "adress"/);
 * ```
 */
export interface HostSettings {
  /** The name or address to connect to. */
  address?: string;
  /**
   * Further names or addresses of the same server (relays of a cluster),
   * tried in order when the ones before cannot be reached; set only when
   * the `address` line names more than one.
   */
  fallbacks?: string[];
  /** The port. */
  port?: number;
  /** The identity key file. */
  identity?: string;
  /** What to do when the host is not in known_hosts. */
  unknownHost?: UnknownHostPolicy;
}

/**
 * One `host` block of the config file.
 *
 * @example Resolve an alias
 * ```ts
 * import { parseHostConfig, settingsFor } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const blocks = parseHostConfig(
 *   "host backup\n  address backup.example.org\n  port 4848\nhost *\n  unknown-host refuse\n",
 * );
 * assert.deepEqual(settingsFor(blocks, "backup"), {
 *   address: "backup.example.org",
 *   port: 4848,
 *   identity: undefined,
 *   unknownHost: "refuse",
 * });
 * assert.throws(() => parseHostConfig("host a\n  adress x\n"), /line 2: Unknown setting "adress"/);
 * ```
 */
export interface HostBlock {
  /** The patterns after `host`. */
  patterns: string[];
  /** Its settings. */
  settings: HostSettings;
  /** The 1-based line of its `host` line. */
  line: number;
}

const POLICIES: readonly UnknownHostPolicy[] = ["ask", "accept-new", "refuse"];

/**
 * Parses a config file. Any line it does not understand is an error naming
 * the line: a misspelt setting that was silently skipped could send a
 * person's key to the wrong host.
 *
 * @param text The file's text.
 * @returns The blocks, in file order.
 * @throws {SyntaxError} `line N: ...` for the first bad line.
 * * @example Resolve an alias
 * ```ts
 * import { parseHostConfig, settingsFor } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const blocks = parseHostConfig(
 *   "host backup\n  address backup.example.org\n  port 4848\nhost *\n  unknown-host refuse\n",
 * );
 * assert.deepEqual(settingsFor(blocks, "backup"), {
 *   address: "backup.example.org",
 *   port: 4848,
 *   identity: undefined,
 *   unknownHost: "refuse",
 * });
 * assert.throws(() => parseHostConfig("host a\n  adress x\n"), /line 2: Unknown setting "adress"/);
 * ```
 */
export function parseHostConfig(text: string): HostBlock[] {
  const blocks: HostBlock[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = index + 1;
    const content = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!content) return;
    const [keyword, ...values] = content.split(/\s+/);
    const key = keyword.toLowerCase();
    const fail = (message: string): never => {
      throw new SyntaxError(`line ${line}: ${message}`);
    };
    if (key === "host") {
      if (values.length === 0) fail("host needs at least one name or pattern");
      blocks.push({ patterns: values, settings: {}, line });
      return;
    }
    const block = blocks.at(-1) ?? fail(`"${keyword}" before any host line`);
    const several = key === "address" && values.length > 1;
    if (values.length !== 1 && !several) fail(`"${keyword}" takes one value`);
    const value = values[0];
    const settings = block.settings;
    const once = (set: boolean) => set && fail(`"${keyword}" is given twice for this host`);
    switch (key) {
      case "address":
        once(settings.address !== undefined);
        for (const address of values) {
          if (!/^[\w.:\-\[\]%]+$/.test(address)) fail(`Invalid address "${address}"`);
        }
        settings.address = value;
        if (several) settings.fallbacks = values.slice(1);
        return;
      case "port": {
        once(settings.port !== undefined);
        const port = Number(value);
        if (!/^\d+$/.test(value) || port < 1 || port > 65535) fail(`Invalid port "${value}"`);
        settings.port = port;
        return;
      }
      case "identity":
        once(settings.identity !== undefined);
        settings.identity = value;
        return;
      case "unknown-host":
        once(settings.unknownHost !== undefined);
        if (!(POLICIES as readonly string[]).includes(value)) {
          fail(`unknown-host is one of ${POLICIES.join(", ")}, not "${value}"`);
        }
        settings.unknownHost = value as UnknownHostPolicy;
        return;
      default:
        fail(`Unknown setting "${keyword}" (known: address, port, identity, unknown-host)`);
    }
  });
  return blocks;
}

/**
 * The settings for `host` (as typed): for each, the first block that
 * matches and sets it.
 *
 * @param blocks The parsed config.
 * @param host The host name as the user typed it.
 * @returns The settings found (each undefined when no block sets it).
 *
 * @example Resolve an alias
 * ```ts
 * import { parseHostConfig, settingsFor } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const blocks = parseHostConfig(
 *   "host backup\n  address backup.example.org\n  port 4848\nhost *\n  unknown-host refuse\n",
 * );
 * assert.deepEqual(settingsFor(blocks, "backup"), {
 *   address: "backup.example.org",
 *   port: 4848,
 *   identity: undefined,
 *   unknownHost: "refuse",
 * });
 * assert.throws(() => parseHostConfig("host a\n  adress x\n"), /line 2: Unknown setting "adress"/);
 * ```
 */
export function settingsFor(blocks: readonly HostBlock[], host: string): HostSettings {
  const result: HostSettings = {};
  for (const block of blocks) {
    if (!block.patterns.some((pattern) => matches(pattern, host))) continue;
    // An address and its fallbacks come from one line, never mixed.
    if (result.address === undefined && block.settings.address !== undefined) {
      result.address = block.settings.address;
      if (block.settings.fallbacks) result.fallbacks = block.settings.fallbacks;
    }
    result.port ??= block.settings.port;
    result.identity ??= block.settings.identity;
    result.unknownHost ??= block.settings.unknownHost;
  }
  return result;
}

/** The aliases a person can type: the patterns without wildcards. */
export function hostAliases(blocks: readonly HostBlock[]): string[] {
  return [...new Set(blocks.flatMap((b) => b.patterns.filter((p) => !/[*?]/.test(p))))];
}

function matches(pattern: string, host: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(
    /\?/g,
    ".",
  );
  return new RegExp(`^${regex}$`, "i").test(host);
}
