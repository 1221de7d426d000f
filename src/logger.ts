// Structured JSON logs (pino) on stdout. Never log secrets: credentials and custom headers are
// redacted by path as well as kept out of log calls.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    name: "haul",
    level,
    redact: { paths: ["*.authorization", "*.password", "*.headers", "req.headers.authorization"], censor: "[redacted]" },
  });
}
