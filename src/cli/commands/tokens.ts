// `haul token create|revoke|list` (ADMIN) and `haul whoami`.
import type { Command } from "commander";
import { ApiTokensQuery, CreateApiTokenMutation, RevokeApiTokenMutation, ViewerQuery } from "../documents.js";
import { formatTime, printJson, table, truncate } from "../format.js";
import type { CliContext } from "../main.js";
import { parseRole, type Role } from "../options.js";

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  program
    .command("whoami")
    .description("show the user and role of the token in use")
    .option("--json", "print the API's answer as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const api = ctx.api(cmd);
      const data = await api.request(ViewerQuery, {});
      if (o.json) printJson(data);
      else process.stdout.write(`${data.viewer.user} (${data.viewer.role}) on ${api.conn.url}, token from ${api.conn.tokenSource}\n`);
    });

  const token = program.command("token").description("manage API tokens (ADMIN)");

  token
    .command("create")
    .description("create a token for a user; prints the token (shown only this once)")
    .argument("<user>", "user name: 1 to 64 letters, digits, '.', '_', '-'")
    .option("--role <role>", "USER or ADMIN", parseRole, "USER" as Role)
    .option("--description <text>", "what the token is for")
    .option("--json", "print the API's answer as JSON")
    .action(async (user: string, o: { role: Role; description?: string; json?: boolean }, cmd: Command) => {
      const data = await ctx.api(cmd).request(CreateApiTokenMutation, { input: { user, role: o.role, description: o.description } });
      if (o.json) {
        printJson(data);
        return;
      }
      const t = data.createApiToken;
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(`token ${t.apiToken.id} for ${t.apiToken.user} (${t.apiToken.role}); it is shown only this once\n`);
    });

  token
    .command("revoke")
    .description("revoke a token at once, everywhere")
    .argument("<id>", "the token's id (haul token list)")
    .option("--json", "print the API's answer as JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const data = await ctx.api(cmd).request(RevokeApiTokenMutation, { id });
      if (o.json) printJson(data);
      else process.stdout.write(`${data.revokeApiToken.id}  revoked ${formatTime(data.revokeApiToken.revokedAt)}\n`);
    });

  token
    .command("list")
    .description("list every token, revoked ones included")
    .option("--json", "print the API's answer as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const data = await ctx.api(cmd).request(ApiTokensQuery, {});
      if (o.json) {
        printJson(data);
        return;
      }
      if (data.apiTokens.length === 0) {
        process.stdout.write("no tokens\n");
        return;
      }
      process.stdout.write(
        table(
          ["ID", "USER", "ROLE", "DESCRIPTION", "CREATED", "BY", "LAST USED", "REVOKED"],
          data.apiTokens.map((t) => [
            t.id,
            t.user,
            t.role,
            truncate(t.description || "-", 40),
            formatTime(t.createdAt),
            t.createdBy ?? "-",
            formatTime(t.lastUsedAt),
            formatTime(t.revokedAt),
          ]),
        ),
      );
    });
}
