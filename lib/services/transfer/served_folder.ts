/**
 * A read-only folder a server offers for download. Every path a client
 * asks for is checked to stay inside it: `..` and absolute paths are
 * refused, and so is any path whose real location (after symlinks) lies
 * outside the folder.
 *
 * @module
 */

import { join, sep } from "node:path";
import { OvtpError } from "../../errors.ts";
import { hasControlCharacters } from "../../identity/keys.ts";
import type { ListEntry } from "./download_messages.ts";

/**
 * A folder served read-only: give one to {@linkcode serve} as
 * {@linkcode ServeOptions.served}, and clients list and download from it
 * with {@linkcode OvtpClient.listFiles} and {@linkcode OvtpClient.getFile}.
 *
 * @example Serving a folder, and refusing paths that leave it
 * ```ts
 * import { generateIdentity, OvtpClient, serve, ServedFolder } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/public/docs`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/public/docs/guide.txt`, "read me");
 * await Deno.writeTextFile(`${dir}/secret.txt`, "private");
 *
 * const server = serve({
 *   identity: await generateIdentity(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   authorize: () => Promise.resolve({ name: "alice" }),
 *   handler: () => ({}),
 *   served: new ServedFolder(`${dir}/public`),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: await generateIdentity(),
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 *
 * assert.deepEqual((await client.listFiles("docs")).map((entry) => entry.name), ["guide.txt"]);
 * await client.getFile("docs/guide.txt", `${dir}/guide.txt`);
 * assert.equal(await Deno.readTextFile(`${dir}/guide.txt`), "read me");
 * await assert.rejects(client.getFile("../secret.txt", `${dir}/stolen.txt`), /not allowed/);
 * client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ServedFolder {
  /** The folder. */
  readonly root: string;
  #realRoot: string | undefined;

  /** Serves `root`. */
  constructor(root: string) {
    this.root = root;
  }

  /**
   * The real path of `path` inside the folder. Throws an OvtpError
   * (`usage`) for a path that is absolute, has `..`, or leads outside.
   */
  async resolve(path: string): Promise<string> {
    if (path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:/.test(path)) {
      throw refused(path, "absolute paths are not served");
    }
    const parts = path.split(/[/\\]+/).filter((p) => p && p !== ".");
    if (parts.includes("..")) throw refused(path, '".." is not allowed');
    if (parts.some(hasControlCharacters)) throw refused(path, "control characters");
    this.#realRoot ??= await Deno.realPath(this.root);
    let real: string;
    try {
      real = await Deno.realPath(join(this.#realRoot, ...parts));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) throw notFound(path);
      throw error;
    }
    if (real !== this.#realRoot && !real.startsWith(this.#realRoot + sep)) {
      throw refused(path, "it leads outside the served folder");
    }
    return real;
  }

  /** Lists a folder (files and folders only, sorted by name). */
  async list(path: string): Promise<ListEntry[]> {
    const real = await this.resolve(path);
    if (!(await Deno.stat(real)).isDirectory) throw refused(path, "not a folder");
    const entries: ListEntry[] = [];
    for await (const entry of Deno.readDir(real)) {
      if (!entry.isFile && !entry.isDirectory) continue;
      const info = await Deno.stat(join(real, entry.name));
      entries.push({
        name: entry.name,
        type: entry.isDirectory ? "dir" : "file",
        size: entry.isDirectory ? 0 : info.size,
        mode: (info.mode ?? 0o644) & 0o777,
      });
    }
    return entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /** Opens a file for reading, with its size and mode. */
  async open(
    path: string,
  ): Promise<{ file: Deno.FsFile; size: number; mode: number; mtime?: number }> {
    const real = await this.resolve(path);
    const info = await Deno.stat(real);
    if (!info.isFile) throw refused(path, "not a regular file");
    const file = await Deno.open(real, { read: true });
    return {
      file,
      size: info.size,
      mode: (info.mode ?? 0o644) & 0o777,
      ...(info.mtime ? { mtime: Math.max(0, Math.floor(info.mtime.getTime())) } : {}),
    };
  }
}

function refused(path: string, why: string): OvtpError {
  return new OvtpError("usage", `Refused "${path}": ${why}`);
}

function notFound(path: string): OvtpError {
  return new OvtpError("io", `No such file in the served folder: "${path}"`);
}
