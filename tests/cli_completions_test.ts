import { tempFile } from "./_tmp.ts";
import assert from "node:assert/strict";
import { ovtp } from "./_cli.ts";
import { compileArgs, PERMISSIONS, TARGETS } from "../scripts/compile.ts";

const COMMANDS = [
  "keygen",
  "id",
  "add-key",
  "keys",
  "listen",
  "send",
  "sendfile",
  "getfile",
  "chat",
];

// On Windows, "bash" may resolve to WSL's launcher in System32, which cannot
// read a Windows temporary path: the script's syntax is checked elsewhere.
const BASH_CHECK = Deno.build.os !== "windows";
if (!BASH_CHECK) {
  console.log("cli_completions_test: the bash script's syntax (bash -n) is not checked on Windows");
}

Deno.test("completions prints a valid bash script naming every command and its options", async () => {
  const result = await ovtp(["completions", "bash"]);
  assert.equal(result.code, 0, result.stderr);
  for (const name of COMMANDS) assert.match(result.stdout, new RegExp(`\\b${name}\\)`));
  assert.match(result.stdout, /send\) COMPREPLY=\(\$\(compgen -W "[^"]*--strict/);
  if (!BASH_CHECK) return;
  const file = await tempFile({ suffix: ".bash" });
  await Deno.writeTextFile(file, result.stdout);
  const check = await new Deno.Command("bash", { args: ["-n", file], stderr: "piped" }).output();
  assert.ok(check.success, new TextDecoder().decode(check.stderr));
});

Deno.test("completions prints zsh and fish scripts, and refuses other shells", async () => {
  const zsh = await ovtp(["completions", "zsh"]);
  assert.equal(zsh.code, 0);
  assert.match(zsh.stdout, /^#compdef ovtp/);
  const fish = await ovtp(["completions", "fish"]);
  assert.equal(fish.code, 0);
  assert.match(fish.stdout, /complete -c ovtp -n '__fish_seen_subcommand_from sendfile' -l name/);
  const other = await ovtp(["completions", "powershell"]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /^ovtp: error: Unknown shell "powershell"/);
});

Deno.test("the binary can be compiled: lazy imports of literal paths or included modules, five targets, the documented permissions", async () => {
  // deno compile bundles only what it can see: every lazy import names a
  // literal path (the NATS client behind listen --cluster), except main.ts's
  // one of the commands, whose modules the compile task includes.
  const root = new URL("../", import.meta.url);
  const sources = [new URL("main.ts", root)];
  for (const dir of ["lib", "commands"]) {
    for await (const entry of walk(new URL(`${dir}/`, root))) sources.push(entry);
  }
  const main = await Deno.readTextFile(new URL("main.ts", root));
  const computed = [...main.matchAll(/\bimport\s*\(\s*[^"\s]/g)];
  assert.equal(computed.length, 1, "main.ts's commandModule is its one computed import");
  const loaded = [...main.matchAll(/commandModule\("([a-z_]+\.ts)", "(\w+)"\)/g)];
  assert.ok(loaded.length >= 16, `main.ts loads ${loaded.length} commands`);
  const args = compileArgs();
  for (const [, file, name] of loaded) {
    const included = args.findIndex((arg, i) =>
      args[i - 1] === "--include" && arg === `commands/${file}`
    );
    assert.ok(included > 0, `the compile task includes commands/${file}`);
    const module = await import(new URL(`commands/${file}`, root).href);
    assert.equal(
      typeof module[name]?.run,
      "function",
      `commands/${file} exports the command ${name}`,
    );
  }
  for (const source of sources) {
    if (source.href.endsWith("/main.ts")) continue;
    const text = await Deno.readTextFile(source);
    assert.doesNotMatch(
      text,
      /\bimport\s*\(\s*[^"\s]/,
      `${source.pathname} imports a computed path`,
    );
    for (const [, path] of text.matchAll(/\bimport\("(\.{1,2}\/[^"]+)"\)/g)) {
      await Deno.stat(new URL(path, source)); // each lazily loaded module exists
    }
  }
  assert.deepEqual([...TARGETS].sort(), [
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
  ]);
  const release = await Deno.readTextFile(new URL(".github/workflows/release.yml", root));
  for (const target of TARGETS) assert.ok(release.includes(`- ${target}`), target);
  assert.match(release, /SHA256SUMS/);
  const readme = await Deno.readTextFile(new URL("README.md", root));
  for (const permission of PERMISSIONS) assert.ok(readme.includes(permission), permission);
  assert.deepEqual(compileArgs("x86_64-pc-windows-msvc").slice(-3), [
    "--output",
    "dist/ovtp-x86_64-pc-windows-msvc.exe",
    "main.ts",
  ]);
});

async function* walk(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) yield* walk(new URL(`${entry.name}/`, dir));
    else if (entry.name.endsWith(".ts")) yield new URL(entry.name, dir);
  }
}
