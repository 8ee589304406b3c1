import { type Command, HOME_OPTION, parseFlags, usageError, writeOut } from "./_cli.ts";

const USAGE = `Usage: ovtp completions bash|zsh|fish [--home DIR]

Prints a shell completion script for the subcommands, their options, and
the words some take (keys list|remove, completions bash|zsh|fish). --home
is accepted, as by every command, and changes nothing here.

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
  completions: ["bash", "zsh", "fish"],
};

function wordsOf(name: string): string[] {
  return Object.hasOwn(WORDS, name) ? WORDS[name] : [];
}

/** The completion script for `shell`, from the command table. */
export function completionScript(
  shell: string,
  commands: Record<string, DescribedCommand>,
): string {
  const names = Object.keys(commands);
  const entries = Object.entries(commands);
  switch (shell) {
    case "bash":
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
  [[ $cur != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))
}
complete -o filenames -F _ovtp ovtp
`;
    case "zsh":
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
  case $words[2] in
${
        entries.map(([name, command]) =>
          `    ${name}) _arguments ${
            wordsOf(name).length ? `'1:word:(${wordsOf(name).join(" ")})' ` : ""
          }'*:file:_files' ${optionsOf(command).map((o) => `'${o}[]'`).join(" ")} ;;`
        ).join("\n")
      }
  esac
}
_ovtp "$@"
`;
    case "fish":
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
        ]).join("\n")
      }
`;
    default:
      usageError("completions", `Unknown shell "${shell}": use bash, zsh or fish`);
  }
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
      const { positionals } = parseFlags(args, { ...HOME_OPTION }, "completions");
      if (positionals.length !== 1) usageError("completions", "Give one shell: bash, zsh or fish");
      await writeOut(completionScript(positionals[0], await commands()));
      return 0;
    },
  };
}
