// `haul`: the command-line client of a haul server, with the verbs of bitsadmin and the
// BitsTransfer cmdlets. A client of the public GraphQL API only (HTTP for queries and mutations,
// graphql-ws for subscriptions). Run through bin/haul.
//
// Exit codes: 0 success; 1 the API refused (the message and code are printed) or the server is
// unreachable; 2 a usage error; 130 a transfer interrupted with Ctrl-C (the job is suspended).
import fs from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { Api, CliError, DEFAULT_URL, resolveConnection } from "./client.js";
import { registerJobCommands } from "./commands/jobs.js";
import { registerMonitorCommand } from "./commands/monitor.js";
import { registerTokenCommands } from "./commands/tokens.js";
import { registerTransferCommand } from "./commands/transfer.js";

export interface CliContext {
  /** The API client for the global options (--url, --token) and the environment. */
  api(cmd: Command): Api;
}

const context: CliContext = {
  api(cmd) {
    const o = cmd.optsWithGlobals<{ url?: string; token?: string }>();
    return new Api(resolveConnection({ url: o.url, token: o.token }));
  },
};

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export function buildProgram(): Command {
  const program = new Command("haul")
    .description("Command-line client for a haul download service (bitsadmin / BitsTransfer verbs over its GraphQL API).")
    .version(packageVersion(), "-V, --version")
    .addOption(new Option("--url <url>", `the haul server (env HAUL_URL; default ${DEFAULT_URL})`))
    .addOption(
      new Option("--token <token>", "API token (env HAUL_TOKEN; default: the admin token in $HAUL_DATA_DIR/admin-token, or ./.haul/admin-token)"),
    )
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ showGlobalOptions: true });
  // Usage errors exit 2 (commander would exit 1); --help and --version exit 0.
  program.exitOverride();

  registerTransferCommand(program, context);
  registerJobCommands(program, context);
  registerMonitorCommand(program, context);
  registerTokenCommands(program, context);

  // Subcommands inherit the exit override and output settings.
  for (const cmd of program.commands) applyToTree(cmd);
  return program;
}

function applyToTree(cmd: Command): void {
  cmd.exitOverride().showHelpAfterError("(run with --help for usage)");
  for (const sub of cmd.commands) applyToTree(sub);
}

/** Prints `haul: <message> (<code>)` on stderr and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander has printed the message (or the help) already: --help and --version exit 0, any
    // usage error (including a command group without its subcommand) 2.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CliError) {
    process.stderr.write(`haul: ${err.message}${err.code ? ` (${err.code})` : ""}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  // A bug in the CLI itself (HAUL_DEBUG=1 shows the stack).
  process.stderr.write(`haul: unexpected error: ${e?.message ?? String(err)}\n`);
  if (process.env.HAUL_DEBUG) process.stderr.write(`${e?.stack ?? ""}\n`);
  return 1;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return 2;
    }
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

const code = await main();
// Let stdout/stderr drain before leaving (they may be pipes).
process.exitCode = code;
await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
process.exit(code);
