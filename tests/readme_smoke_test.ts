/**
 * README's walkthrough, run as a new user would: every shell block before
 * "## Commands" must be marked `<!-- smoke -->`, and every command in it is
 * run here, in order, by the `ovtp` that README's first command installs.
 * The two machines are two temporary homes (OVTP_HOME), `server.example.org`
 * is a listen on 127.0.0.1 and a free port, and the commands that talk to
 * it run on a terminal (tmux); after `pair` no host-key prompt may appear,
 * and without it the first one is answered as README says (comparing the
 * fingerprint with listen's). A
 * command this file does not know fails the test: teach it here, or fix
 * README, so that README stays true.
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Listener, ovtp, startListen } from "./_cli.ts";
import { HAS_NPM, install, ROOT } from "./_install.ts";
import { HAS_TMUX, screenShows, sessionName, tmux } from "./_tmux.ts";

const WHY_NOT = !HAS_NPM
  ? "npm is not installed (README's first command needs it)"
  : !HAS_TMUX
  ? "tmux cannot run here (the host-key prompt and the chat need a terminal)"
  : undefined;
if (WHY_NOT) {
  console.log(`tests/readme_smoke_test.ts: ${WHY_NOT}: the README walkthrough is skipped`);
}

type Machine = "client" | "server";

/** One command of the walkthrough. */
interface Step {
  /** README's line number. */
  line: number;
  /** The command's words, unquoted. */
  argv: string[];
  /** The machines a `# on the ...` comment put it on (none before the first such comment). */
  machines: Machine[];
  /** The comment after the command, if any. */
  comment: string;
}

/** The commands of every shell block before "## Commands", each block required to be marked. */
function walkthrough(markdown: string): Step[] {
  const lines = markdown.split("\n");
  const end = lines.findIndex((line) => line === "## Commands");
  assert.ok(end > 0, 'README.md has no "## Commands" heading, where the walkthrough ends');
  const steps: Step[] = [];
  let marked = false;
  let inBlock = false;
  let machines: Machine[] = [];
  for (let i = 0; i < end; i++) {
    const text = lines[i].trim();
    if (inBlock) {
      if (text === "```") inBlock = false;
      else if (text.startsWith("#")) {
        // "# on the client (alice's laptop) and on the server, once each: ..."
        const where = /^# (on the [^:]*):/.exec(text)?.[1];
        if (where) {
          machines = (["client", "server"] as const).filter((m) => where.includes(`on the ${m}`));
        }
      } else if (text) steps.push({ line: i + 1, ...splitComment(text), machines });
      continue;
    }
    if (text.startsWith("```sh")) {
      assert.ok(
        marked,
        `README.md line ${i + 1}: a shell block of the walkthrough without <!-- smoke -->: ` +
          "tests/readme_smoke_test.ts must run every command there",
      );
      inBlock = true;
      marked = false;
    } else if (text) marked = text.startsWith("<!-- smoke");
  }
  assert.ok(!inBlock, "README.md: a shell block of the walkthrough is not closed");
  return steps;
}

/** Splits `cmd 'a b' "c" # comment` into words and comment. */
function splitComment(text: string): { argv: string[]; comment: string } {
  const argv: string[] = [];
  const word = /\s*(?:'([^']*)'|"([^"]*)"|(#.*)|(\S+))/y;
  let match;
  while ((match = word.exec(text)) && match[0].trim()) {
    if (match[3] !== undefined) return { argv, comment: match[3].slice(1).trim() };
    argv.push(match[1] ?? match[2] ?? match[4]);
  }
  return { argv, comment: "" };
}

/** What the walkthrough has made so far. */
interface World {
  ovtp: string[];
  homes: Record<Machine, string>;
  /** The folder the client's commands run in (relative paths such as report.pdf). */
  cwd: string;
  listener?: Listener;
  /** Whether the client recorded the server's key (README: the first contact asks). */
  hostKnown: boolean;
  /** The code `ovtp invite` printed on the server. */
  code?: string;
  panes: string[];
}

const HOST = "server.example.org";

function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** `server.example.org` is the listen started by the walkthrough. */
function target(world: World, argv: string[]): string[] {
  return argv.map((word) => {
    if (word !== HOST) return word;
    assert.ok(world.listener, `${HOST} is used before \`ovtp listen\` ran`);
    return world.listener.target;
  });
}

/**
 * Runs `ovtp ARGS` on the client, on a terminal: the host-key prompt is
 * answered `yes` once its fingerprint matches listen's; `interact` then
 * plays the rest. Resolves with the screen and the exit code.
 */
async function onTerminal(
  world: World,
  args: string[],
  interact: (pane: string) => Promise<void> = () => Promise.resolve(),
): Promise<{ screen: string; code: number }> {
  const pane = sessionName();
  world.panes.push(pane);
  const bin = world.ovtp[0].replace(/\/ovtp$/, "");
  const command = `cd ${quote(world.cwd)} && unset OVTP_ACCEPT_NEW OVTP_PASSPHRASE && ` +
    `NO_COLOR=1 PATH=${quote(bin)}:"$PATH" OVTP_HOME=${quote(world.homes.client)} ` +
    `HOME=${quote(`${world.homes.client}.user`)} ovtp ${args.map(quote).join(" ")}; ` +
    `echo "[exit $?]"; sleep 600`;
  await tmux("new-session", "-d", "-s", pane, "-x", "200", "-y", "40", command);
  let screen = await screenShows(
    pane,
    /Are you sure you want to continue connecting|\[exit \d+\]|joined room/,
  );
  const asked = /Are you sure/.test(screen);
  assert.equal(asked, !world.hostKnown, asked ? "asked again" : "no host-key question");
  world.hostKnown = true;
  if (asked) {
    const shown = /its key fingerprint is (SHA256:\S+)/.exec(screen)?.[1];
    const printed = /listening on \S+ as (SHA256:\S+)/.exec(world.listener!.stderr())?.[1];
    assert.ok(shown && shown === printed, `the prompt shows ${shown}, listen printed ${printed}`);
    await tmux("send-keys", "-t", pane, "-l", "yes");
    await tmux("send-keys", "-t", pane, "Enter");
  }
  await interact(pane);
  screen = await screenShows(pane, /\[exit \d+\]/);
  return { screen, code: Number(/\[exit (\d+)\]/.exec(screen)![1]) };
}

async function findFile(dir: string, name: string): Promise<string | undefined> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isFile && entry.name === name) return path;
    if (entry.isDirectory) {
      const found = await findFile(path, name);
      if (found) return found;
    }
  }
}

/** How each command of the walkthrough is run and checked; a command missing here fails. */
const RUN: Record<string, (world: World, step: Step) => Promise<void>> = {
  async "npm install"(world, { argv }) {
    assert.deepEqual(argv, ["npm", "install", "-g", "--install-links", "."]);
    // "." is this checkout; -g goes to a temporary prefix instead of the user's.
    world.ovtp = await install();
  },
  async "npx --yes"(_world, { argv }) {
    // Running the tests from inside a test would run this test again: the
    // command is checked to reach the same Deno and the task instead.
    assert.deepEqual(argv, ["npx", "--yes", `deno@${Deno.version.deno}`, "task", "test"]);
    const tasks = await new Deno.Command("npx", {
      args: ["--yes", `deno@${Deno.version.deno}`, "task", "--config", join(ROOT, "deno.json")],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const listed = new TextDecoder().decode(tasks.stdout) + new TextDecoder().decode(tasks.stderr);
    assert.ok(tasks.success, listed);
    assert.match(listed, /^- test$/m);
  },
  async "ovtp keygen"(world, { argv, machines }) {
    assert.ok(machines.length > 0, "keygen is run before README says on which machine");
    for (const machine of machines) {
      const made = await ovtp(argv.slice(1), { home: world.homes[machine], program: world.ovtp });
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout + made.stderr, /SHA256:\S+/);
      assert.match(made.stdout + made.stderr, /^ovtp1 \S+/m);
      await Deno.stat(join(world.homes[machine], "id_ovtp"));
    }
  },
  async "ovtp invite"(world, { argv, machines }) {
    assert.deepEqual(machines, ["server"]);
    const made = await ovtp(argv.slice(1), { home: world.homes.server, program: world.ovtp });
    assert.equal(made.code, 0, made.stderr);
    // The code is read to the client's owner: the command it prints carries it.
    const code = /^ {2}ovtp pair \S+ (\d+-\d{4}-\d{4})$/m.exec(made.stdout)?.[1];
    assert.ok(code, `invite printed no pair command with a code:\n${made.stdout}`);
    world.code = code;
  },
  async "ovtp listen"(world, { argv, machines, comment }) {
    assert.deepEqual(machines, ["server"]);
    assert.deepEqual(argv, ["ovtp", "listen"]);
    world.listener = await startListen(world.homes.server, [], { program: world.ovtp });
    // The comment quotes what listen prints, for 0.0.0.0:4747 (here 127.0.0.1 and a free port).
    const quoted = /^"(.*)"$/.exec(comment)?.[1];
    assert.ok(quoted, `the comment quotes listen's line: ${comment}`);
    const pattern = quoted.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      .replace("0\\.0\\.0\\.0:4747", "127\\.0\\.0\\.1:\\d+").replaceAll("\\.\\.\\.", "\\S+");
    assert.match(world.listener.stderr(), new RegExp(pattern));
  },
  async "ovtp pair"(world, { argv, machines }) {
    assert.deepEqual(machines, ["client"]);
    assert.equal(argv.length, 4);
    assert.match(argv[3], /^\d+-\d{4}-\d{4}$/, "README's code has the form invite prints");
    assert.ok(world.code, "pair runs before invite made a code");
    const args = target(world, [...argv.slice(1, 3), world.code]);
    const paired = await ovtp(args, { home: world.homes.client, program: world.ovtp });
    assert.equal(paired.code, 0, paired.stderr);
    const fingerprint = /listening on \S+ as (SHA256:\S+)/.exec(world.listener!.stderr())?.[1];
    assert.ok(fingerprint && paired.stdout.includes(fingerprint), paired.stdout);
    // README: nothing asks about a fingerprint after pair.
    world.hostKnown = true;
  },
  async "ovtp send"(world, { argv, machines }) {
    assert.deepEqual(machines, ["client"]);
    const { screen, code } = await onTerminal(world, target(world, argv.slice(1)));
    assert.equal(code, 0, screen);
    await world.listener!.waitFor(`: ${argv[argv.length - 1]}`, "stdout");
  },
  async "ovtp sendfile"(world, { argv, machines }) {
    assert.deepEqual(machines, ["client"]);
    const paths = argv.slice(3);
    for (const path of paths) {
      await Deno.writeTextFile(join(world.cwd, path), `the content of ${path}\n`);
    }
    const { screen, code } = await onTerminal(world, target(world, argv.slice(1)));
    assert.equal(code, 0, screen);
    for (const path of paths) {
      const arrived = await findFile(join(world.homes.server, "inbox"), path);
      assert.ok(arrived, `${path} is not in the server's inbox`);
      assert.equal(await Deno.readTextFile(arrived), `the content of ${path}\n`);
    }
  },
  async "ovtp chat"(world, { argv, machines }) {
    assert.deepEqual(machines, ["client"]);
    const room = argv[argv.indexOf("--room") + 1];
    const { screen, code } = await onTerminal(world, target(world, argv.slice(1)), async (pane) => {
      await screenShows(pane, new RegExp(`joined room ${room} as `));
      await tmux("send-keys", "-t", pane, "-l", "hello from the README");
      await tmux("send-keys", "-t", pane, "Enter");
      await screenShows(pane, /nobody else is in this room yet/);
      await tmux("send-keys", "-t", pane, "-l", "/quit");
      await tmux("send-keys", "-t", pane, "Enter");
    });
    assert.equal(code, 0, screen);
  },
};

function handlerOf(argv: string[]): string | undefined {
  const key = argv.slice(0, 2).join(" ");
  return key in RUN ? key : undefined;
}

Deno.test("the README walkthrough is found: marked blocks, every command known", async () => {
  const steps = walkthrough(await Deno.readTextFile(join(ROOT, "README.md")));
  const unknown = steps.filter((step) => !handlerOf(step.argv));
  assert.deepEqual(
    unknown.map((step) => `README.md line ${step.line}: ${step.argv.join(" ")}`),
    [],
    "commands of README's walkthrough that tests/readme_smoke_test.ts does not run",
  );
  // The walkthrough's order: install, first contact by a code, send, sendfile, chat.
  const order = [
    "npm install",
    "ovtp keygen",
    "ovtp invite",
    "ovtp pair",
    "ovtp send",
    "ovtp sendfile",
    "ovtp chat",
  ];
  const at = order.map((key) => steps.findIndex((step) => handlerOf(step.argv) === key));
  assert.ok(
    at.every((i) => i >= 0),
    `missing from the walkthrough: ${order.filter((_, i) => at[i] < 0)}`,
  );
  assert.deepEqual([...at].sort((a, b) => a - b), at, "the walkthrough is out of order");
});

Deno.test("an unmarked shell block in the walkthrough, or one left open, is refused", () => {
  assert.throws(
    () => walkthrough("# x\n\n```sh\novtp id\n```\n## Commands\n"),
    /without <!-- smoke -->/,
  );
  assert.throws(() => walkthrough("<!-- smoke -->\n```sh\novtp id\n## Commands\n"), /not closed/);
  assert.throws(() => walkthrough("no end\n"), /## Commands/);
  const steps = walkthrough(
    '<!-- smoke -->\n\n```sh\n# on the server:\novtp listen  # "x"\n```\n## Commands\n',
  );
  assert.deepEqual(steps, [{
    line: 5,
    argv: ["ovtp", "listen"],
    machines: ["server"],
    comment: '"x"',
  }]);
});

Deno.test({
  name: "every command of the README walkthrough runs as README says",
  ignore: WHY_NOT !== undefined,
  async fn() {
    const steps = walkthrough(await Deno.readTextFile(join(ROOT, "README.md")));
    const [client, server] = await Promise.all([tempHomeOnly(), tempHomeOnly()]);
    const world: World = {
      ovtp: [],
      homes: { client, server },
      cwd: await tempDir({ prefix: "ovtp-readme-" }),
      hostKnown: false,
      panes: [],
    };
    try {
      for (const step of steps) {
        const key = handlerOf(step.argv);
        assert.ok(key, `README.md line ${step.line}: \`${step.argv.join(" ")}\` is not run here`);
        if (key !== "npm install") {
          assert.ok(world.ovtp.length, "ovtp is used before it is installed");
        }
        try {
          await RUN[key](world, step);
        } catch (error) {
          throw new Error(`README.md line ${step.line}: ${step.argv.join(" ")}`, { cause: error });
        }
      }
    } finally {
      for (const pane of world.panes) await tmux("kill-session", "-t", pane).catch(() => {});
      await world.listener?.stop();
    }
  },
});

/** An empty home: keygen is the walkthrough's to run. */
async function tempHomeOnly(): Promise<string> {
  const dir = await tempDir({ prefix: "ovtp-readme-" });
  return join(dir, "home");
}
