import { hostAliases } from "../lib/client/host_config.ts";
import { type Command, openKeystore, usageError, writeOut } from "./_cli.ts";
import { flag, HOME, parseOptions } from "./_options.ts";

/**
 * The options: the help lists none (it says --home is accepted), so that
 * the scripts offer no option after `ovtp completions`.
 */
const OPTIONS = {
  home: HOME,
  // For the scripts, not for people: it is not in the help.
  hosts: flag({ help: "print the host aliases of ~/.ovtp/config, one a line" }),
};

const USAGE = `Usage: ovtp completions bash|zsh|fish [--home DIR]

Prints a shell completion script for the subcommands, their options, the
words some take (keys list|remove, completions bash|zsh|fish), and the host
aliases of ~/.ovtp/config where a command takes a HOST: the script asks
\`ovtp completions --hosts\` for them each time, so a new alias is
completed at once. --home is accepted, as by every command, and changes
nothing in the script.

  bash:  ovtp completions bash > /etc/bash_completion.d/ovtp
         (or: source <(ovtp completions bash) in ~/.bashrc)
  zsh:   ovtp completions zsh > "\${fpath[1]}/_ovtp"
  fish:  ovtp completions fish > ~/.config/fish/completions/ovtp.fish
`;

/**
 * The options a command documents in its help text: the lines of its
 * option list, which start with `--name` or `-x, --name`.
 */
export function optionsOf(command: Command): string[] {
  const found = [...command.usage.matchAll(/^\s+(?:-[a-zA-Z], )?(--[a-z][a-z-]*)/gm)];
  return [...new Set(found.map((m) => m[1]))].sort();
}

/** The words a command takes as its first argument, completed as options are. */
export const WORDS: Record<string, string[]> = {
  keys: ["list", "remove", "set"],
  "known-hosts": ["list", "add", "remove"],
  contacts: ["list", "add", "remove"],
  completions: ["bash", "zsh", "fish"],
};

/**
 * The commands that take a HOST, and its position among their arguments
 * (1: the first after the command's name). Completed with the config's aliases.
 */
export const HOST_ARGUMENT: Record<string, number> = {
  send: 1,
  sendfile: 1,
  getfile: 1,
  chat: 1,
  "known-hosts": 2,
};

/** How the scripts ask for the aliases; errors (a bad config) are the command's to show. */
const HOSTS_COMMAND = "ovtp completions --hosts 2>/dev/null";

/** bash `case` lines setting host_at, one per position (bash 3.2 has no associative arrays). */
function hostCases(): string {
  const byPosition = new Map<number, string[]>();
  for (const [name, at] of Object.entries(HOST_ARGUMENT)) {
    byPosition.set(at, [...byPosition.get(at) ?? [], name]);
  }
  return [...byPosition].map(([at, names]) => `    ${names.join("|")}) host_at=${at} ;;`)
    .join("\n");
}

function wordsOf(name: string): string[] {
  return Object.hasOwn(WORDS, name) ? WORDS[name] : [];
}

/** The completion script for `shell`, from the command table. */
export function completionScript(
  shell: string,
  commands: Record<string, DescribedCommand>,
): string {
  const entries = Object.entries(commands);
  switch (shell) {
    case "bash":
      return bashScript(entries);
    case "zsh":
      return zshScript(entries);
    case "fish":
      return fishScript(entries);
    default:
      usageError("completions", `Unknown shell "${shell}": use bash, zsh or fish`);
  }
}

type Entries = [string, DescribedCommand][];

function bashScript(entries: Entries): string {
  const names = entries.map(([name]) => name);
  return `# bash completion for ovtp
_ovtp() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [[ \${COMP_CWORD} -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${names.join(" ")} --help --version" -- "$cur"))
    return
  fi
  case \${COMP_WORDS[1]} in
${
    entries.map(([name, command]) =>
      `    ${name}) COMPREPLY=($(compgen -W "${
        [...wordsOf(name), ...optionsOf(command)].join(" ")
      } --help" -- "$cur")) ;;`
    ).join("\n")
  }
  esac
  # Aliases are matched here, not by compgen -W, which would expand them.
  local host_at=0 host
  case \${COMP_WORDS[1]} in
${hostCases()}
  esac
  if [[ $cur != -* && $host_at -eq $((COMP_CWORD - 1)) ]]; then
    while IFS= read -r host; do
      [[ $host == "$cur"* ]] && COMPREPLY+=("$host")
    done < <(${HOSTS_COMMAND})
  fi
  [[ $cur != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))
}
complete -o filenames -F _ovtp ovtp
`;
}

function zshScript(entries: Entries): string {
  return `#compdef ovtp
_ovtp() {
  local -a commands
  commands=(
${entries.map(([name, command]) => `    '${name}:${command.summary.replace(/'/g, "")}'`).join("\n")}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  # _arguments numbers positions after words[1]: drop "ovtp", so that the
  # subcommand's first argument is position 1.
  local subcommand=$words[2]
  shift words
  (( CURRENT-- ))
  case $subcommand in
${
    entries.map(([name, command]) =>
      `    ${name}) _arguments ${
        wordsOf(name).length ? `'1:word:(${wordsOf(name).join(" ")})' ` : ""
      }${
        Object.hasOwn(HOST_ARGUMENT, name) ? `'${HOST_ARGUMENT[name]}:host:_ovtp_hosts' ` : ""
      }'*:file:_files' ${optionsOf(command).map((o) => `'${o}[]'`).join(" ")} ;;`
    ).join("\n")
  }
  esac
}
_ovtp_hosts() {
  local -a hosts
  hosts=(\${(f)"$(${HOSTS_COMMAND})"})
  compadd -a hosts
}
_ovtp "$@"
`;
}

function fishScript(entries: Entries): string {
  const names = entries.map(([name]) => name);
  return `# fish completion for ovtp
complete -c ovtp -f -n __fish_use_subcommand -a '${names.join(" ")}'
${
    entries.flatMap(([name, command]) => [
      `complete -c ovtp -n '__fish_seen_subcommand_from ${name}' -d '${
        command.summary.replace(/'/g, "")
      }'`,
      ...(wordsOf(name).length
        ? [
          `complete -c ovtp -n '__fish_seen_subcommand_from ${name}' -a '${
            wordsOf(name).join(" ")
          }'`,
        ]
        : []),
      ...optionsOf(command).map((o) =>
        `complete -c ovtp -n '__fish_seen_subcommand_from ${name}' -l ${o.slice(2)}`
      ),
      ...(Object.hasOwn(HOST_ARGUMENT, name)
        ? [`complete -c ovtp -n '__fish_seen_subcommand_from ${name}' -a '(${HOSTS_COMMAND})'`]
        : []),
    ]).join("\n")
  }
`;
}

/** A command as the completion scripts see it. */
export type DescribedCommand = Command & { summary: string };

/** `ovtp completions`, over the command table it is given (main.ts's). */
export function completionsCommand(
  commands: () => Promise<Record<string, DescribedCommand>>,
): Command {
  return {
    usage: USAGE,
    async run(args: string[]) {
      const parsed = parseOptions(OPTIONS, args, "completions");
      const { positionals } = parsed;
      const values = parsed.values();
      if (values.hosts) {
        if (positionals.length > 0) usageError("completions", "--hosts takes no shell");
        const aliases = hostAliases(await openKeystore(values.home).readHostConfig());
        await writeOut(aliases.map((alias) => alias + "\n").join(""));
        return 0;
      }
      if (positionals.length !== 1) usageError("completions", "Give one shell: bash, zsh or fish");
      await writeOut(completionScript(positionals[0], await commands()));
      return 0;
    },
  };
}
