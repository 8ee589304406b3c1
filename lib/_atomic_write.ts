/**
 * Writes a file atomically: a temporary file in the same directory, synced,
 * then renamed over the target, so a reader sees the old or the new
 * content, never a mix, even if the process dies halfway.
 */
export async function atomicWrite(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    const file = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode,
    });
    try {
      let written = 0;
      while (written < bytes.length) {
        written += await file.write(bytes.subarray(written));
      }
      await file.sync();
    } finally {
      file.close();
    }
    // Deno.open honours the umask; set the mode exactly.
    if (Deno.build.os !== "windows") await Deno.chmod(temp, mode);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
