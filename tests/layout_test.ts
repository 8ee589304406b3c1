// The shape of lib/ that lib/README.md promises: one folder per concept,
// listed with its main file (which opens with a comment), only the shared
// basics at the top, no import cycle, and no function over 80 lines in
// lib/ or commands/.

import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LIB = join(ROOT, "lib");
const TOP_LEVEL = ["README.md", "bytes.ts", "errors.ts", "logger.ts", "version.ts"];

async function walk(dir: string): Promise<{ files: string[]; folders: string[] }> {
  const files: string[] = [];
  const folders: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      folders.push(path);
      const inner = await walk(path);
      files.push(...inner.files);
      folders.push(...inner.folders);
    } else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return { files, folders };
}

const { files: LIB_FILES, folders: LIB_FOLDERS } = await walk(LIB);

Deno.test("lib/README.md lists every folder of lib/ with a main file that says what it holds", async () => {
  const map = await Deno.readTextFile(join(LIB, "README.md"));
  const rows = [...map.matchAll(/^\| \[([a-z/_]+)\/\]\([a-z/_]+\) +\|[^|]+\| `([a-z_.]+)` +\|$/gm)];
  const listed = rows.map(([, folder]) => folder).sort();
  assert.deepEqual(listed, LIB_FOLDERS.map((f) => relative(LIB, f)).sort());
  for (const [, folder, main] of rows) {
    const text = await Deno.readTextFile(join(LIB, folder, main));
    assert.match(text, /^\/\*\*\n \* \S/, `${folder}/${main} opens with its header comment`);
  }
  const top = [];
  for await (const entry of Deno.readDir(LIB)) if (entry.isFile) top.push(entry.name);
  assert.deepEqual(top.sort(), TOP_LEVEL);
});

/** The relative modules `file` imports statically (values and types). */
async function importsOf(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(file);
  // Only real statements: a JSDoc example's imports start with " * ".
  const statements = text.matchAll(/^(?:import|export)\b[^;]*?\bfrom "(\.{1,2}\/[^"]+)"/gms);
  return [...statements].map(([, spec]) => resolve(dirname(file), spec));
}

Deno.test("no module of lib/ imports itself back, however far round", async () => {
  const graph = new Map<string, string[]>();
  for (const file of LIB_FILES) graph.set(file, await importsOf(file));
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      cycles.push(
        [...path.slice(path.indexOf(file)), file].map((f) => relative(LIB, f)).join(" → "),
      );
      return;
    }
    state.set(file, "open");
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});

/**
 * The functions and methods of a formatted file longer than `max` lines: a
 * declaration line that ends with "{" runs to the first line after it that
 * is its indentation followed by "}" (deno fmt makes that exact).
 */
function longFunctions(text: string, max: number): string[] {
  const lines = text.split("\n");
  const found: string[] = [];
  const declaration =
    /^(\s*)(?:export )?(?:default )?(?:async )?(?:function\*? ?[\w$]*|(?:(?:static|private|public|protected|override|readonly|async|get|set) )*[#\w$]+)\s*(?:<[^>]*>)?\(.*\{$/;
  lines.forEach((line, start) => {
    const match = declaration.exec(line);
    if (!match || /^\s*(if|for|while|switch|catch|return)\b/.test(line)) return;
    const close = new RegExp(`^${match[1]}\\}`);
    const end = lines.findIndex((l, i) => i > start && close.test(l));
    if (end > 0 && end - start + 1 > max) {
      found.push(`${start + 1}: ${line.trim()} (${end - start + 1} lines)`);
    }
  });
  return found;
}

Deno.test("no function or method in lib/ or commands/ is over 80 lines", async () => {
  const { files: commandFiles } = await walk(join(ROOT, "commands"));
  const long: string[] = [];
  for (const file of [...LIB_FILES, ...commandFiles]) {
    for (const hit of longFunctions(await Deno.readTextFile(file), 80)) {
      long.push(`${relative(ROOT, file)}:${hit}`);
    }
  }
  assert.deepEqual(long, []);
});

Deno.test("the long-function check finds a long function and passes a short one", () => {
  const body = (n: number) =>
    Array.from({ length: n }, (_, i) => `  const a${i} = ${i};`).join("\n");
  assert.deepEqual(longFunctions(`export function f() {\n${body(10)}\n}\n`, 80), []);
  assert.equal(
    longFunctions(`export async function g(a: number) {\n${body(90)}\n}\n`, 80).length,
    1,
  );
  assert.equal(
    longFunctions(`class C {\n  async #m(x: string): Promise<void> {\n${body(90)}\n  }\n}\n`, 80)
      .length,
    1,
  );
});

Deno.test("lib/README.md's walks through lib/ name files that exist, as many as they say", async () => {
  const map = await Deno.readTextFile(join(LIB, "README.md"));
  const walks = [...map.matchAll(/^## Following .*: (\d+) files\n([\s\S]*?)(?=^## |(?![\s\S]))/gm)];
  assert.equal(walks.length, 2, "the frame's walk and the file's walk");
  for (const [, count, text] of walks) {
    const steps = [...text.matchAll(/^\d+\. [^`\n]*`([a-z_/]+\.ts)`/gm)].map(([, file]) => file);
    assert.equal(steps.length, Number(count), text.slice(0, 60));
    for (const file of [...text.matchAll(/`([a-z_/]+\.ts)`/g)].map(([, file]) => file)) {
      assert.ok(
        LIB_FILES.includes(join(LIB, file)),
        `lib/README.md names ${file}, which is not in lib/`,
      );
    }
  }
});
