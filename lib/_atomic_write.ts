import { checkNotLink, chmodFile } from "./_no_follow.ts";

/**
 * Writes a file atomically: a temporary file in the same directory, synced,
 * then renamed over the target, so a reader sees the old or the new
 * content, never a mix, even if the process dies halfway. A symlink (or
 * anything but a regular file) at `path` is refused: renaming would
 * silently replace it, and writing through it would change its target.
 */
export async function atomicWrite(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await checkNotLink(path);
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    const file = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode,
    });
    let info: Deno.FileInfo;
    try {
      let written = 0;
      while (written < bytes.length) {
        written += await file.write(bytes.subarray(written));
      }
      await file.sync();
      info = await file.stat();
    } finally {
      file.close();
    }
    // Deno.open honours the umask; set the mode exactly (on the file just
    // written, not on whatever its name may lead to now).
    chmodFile(temp, mode, info);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
