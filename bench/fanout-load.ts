// The load generator of the fan-out benchmark (bench/fanout.ts), in a process of its own: it holds
// thousands of subscriptions (graphql-transport-ws over `ws`, written by hand rather than with
// graphql-ws's client to keep the client's own cost per message small, or SSE over node:http) and
// timestamps every delivery. Latency of a delivery = the moment it is read here (Date.now()) minus
// the event's `at` field (same machine, same clock); and, when the parent passes the moments it sent
// each transition (by job id), the moment it is read minus the moment its transition was sent.
//
// Driven over stdin/stdout, one JSON line each way (each request answered by one line):
//   {"op":"connect","kind":"ws"|"sse","url":"http://…/graphql","tokens":["…"],"count":1000,"query":"subscription {…}","concurrency":100}
//        -> {"connected":1000,"failed":0,"ms":812,"firstError":null}     (token i % tokens.length for subscriber i; [] = none)
//   {"op":"phase","name":"measure"}   -> {"ok":true}     every counter starts again from zero
//   {"op":"wait","min":10,"timeoutMs":30000} -> {"complete":true,"reached":1000,"alive":1000,"ms":…}
//        resolves once every live subscriber has received at least `min` events in this phase
//   {"op":"stats","sent":{"<job id>":<epoch ms>},"committed":{"<cursor>":<epoch ms>}}
//        -> {"deliveries":…,"p50":…,"p90":…,"p99":…,"max":…,"minPerSub":…,"events":…,"errors":…,
//            "fromSend":{"n":…,"p50":…,"p99":…,"max":…},"fromCommit":{…}}   (latencies from those moments instead of `at`)
//   {"op":"close"}                    -> {"closed":n}    closes every subscription (WebSocket close 1000 / SSE abort)
// It exits when stdin ends or on SIGTERM.
import http from "node:http";
import readline from "node:readline";
import WebSocket from "ws";

interface Sub {
  /** events received in the current phase */
  n: number;
  alive: boolean;
  close(): void;
}

const subs: Sub[] = [];
let lat: number[] = [];
/** per delivery: the moment it was read and its job's id */
let recvAt: number[] = [];
let recvJob: string[] = [];
let recvCursor: string[] = [];
let cursors = new Set<string>();
let errors = 0;
let firstError: string | null = null;
let ended = 0;
let waiter: { min: number; reached: number; resolve: () => void } | null = null;

function alive(): number {
  let n = 0;
  for (const s of subs) if (s.alive) n++;
  return n;
}

function checkWaiter(): void {
  if (waiter && waiter.reached >= alive()) {
    const w = waiter;
    waiter = null;
    w.resolve();
  }
}

function noteError(text: string): void {
  errors++;
  firstError ??= text.slice(0, 500);
}

/** One delivered event (its JSON text): only `at` and `cursor` are looked at, without parsing the rest. */
function onEvent(sub: Sub, text: string): void {
  const now = Date.now();
  const i = text.indexOf('"at":"');
  if (i < 0) {
    noteError(text);
    return;
  }
  const at = Date.parse(text.slice(i + 6, text.indexOf('"', i + 6)));
  lat.push(now - at);
  const c = text.indexOf('"cursor":"');
  const cursor = c >= 0 ? text.slice(c + 10, text.indexOf('"', c + 10)) : "";
  cursors.add(cursor);
  recvCursor.push(cursor);
  const j = text.indexOf('"job":{"id":"');
  recvAt.push(now);
  recvJob.push(j >= 0 ? text.slice(j + 13, text.indexOf('"', j + 13)) : "");
  sub.n++;
  if (waiter && sub.n === waiter.min) {
    waiter.reached++;
    checkWaiter();
  }
}

function gone(sub: Sub): void {
  if (!sub.alive) return;
  sub.alive = false;
  ended++;
  checkWaiter();
}

function openWs(url: string, token: string | undefined, query: string): Promise<Sub> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), "graphql-transport-ws", { perMessageDeflate: false });
    const sub: Sub = { n: 0, alive: true, close: () => ws.close(1000) };
    let acked = false;
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: token ? { authorization: `Bearer ${token}` } : {} })));
    ws.on("message", (data: Buffer) => {
      const text = data.toString();
      if (text.includes('"type":"next"')) return onEvent(sub, text);
      if (!acked && text.includes('"type":"connection_ack"')) {
        acked = true;
        ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
        resolve(sub);
      } else if (text.includes('"type":"ping"')) {
        ws.send('{"type":"pong"}');
      } else if (!text.includes('"type":"pong"')) {
        noteError(text); // error, complete, or anything unexpected
      }
    });
    ws.on("error", (err) => {
      if (!acked) reject(err);
      else noteError(`socket error: ${err.message}`);
    });
    ws.on("close", (code, reason) => {
      if (!acked) reject(new Error(`closed before connection_ack: ${code} ${String(reason)}`));
      else if (sub.alive && code !== 1000) noteError(`socket closed: ${code} ${String(reason)}`);
      gone(sub);
    });
  });
}

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function openSse(url: string, token: string | undefined, query: string): Promise<Sub> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query });
    const req = http.request(url, {
      method: "POST",
      agent,
      headers: {
        accept: "text/event-stream",
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    });
    const sub: Sub = { n: 0, alive: true, close: () => req.destroy() };
    let started = false;
    req.on("response", (res) => {
      if (res.statusCode !== 200 || !String(res.headers["content-type"]).includes("text/event-stream")) {
        let text = "";
        res.on("data", (d) => (text += String(d)));
        res.on("end", () => reject(new Error(`SSE: HTTP ${res.statusCode} ${res.headers["content-type"]}: ${text.slice(0, 300)}`)));
        return;
      }
      started = true;
      resolve(sub);
      res.setEncoding("utf8");
      let buf = "";
      res.on("data", (chunk: string) => {
        buf += chunk;
        for (let k = buf.indexOf("\n\n"); k >= 0; k = buf.indexOf("\n\n")) {
          const block = buf.slice(0, k);
          buf = buf.slice(k + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trimStart();
          }
          if (event === "complete") {
            if (sub.alive) noteError("SSE stream completed by the server");
          } else if (data) {
            if (data.includes('"errors"')) noteError(data);
            else onEvent(sub, data);
          }
        }
      });
      res.on("close", () => gone(sub));
    });
    req.on("error", (err) => {
      if (!started) reject(err);
      else if (sub.alive) noteError(`SSE error: ${err.message}`);
      gone(sub);
    });
    req.end(body);
  });
}

function pct(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function handle(msg: Record<string, any>): Promise<unknown> {
  switch (msg.op) {
    case "connect": {
      const t0 = performance.now();
      const count = msg.count as number;
      const tokens = (msg.tokens ?? []) as string[];
      const open = msg.kind === "sse" ? openSse : openWs;
      let next = 0;
      let connected = 0;
      let failed = 0;
      let err: string | null = null;
      await Promise.all(
        Array.from({ length: Math.min(count, msg.concurrency ?? 100) }, async () => {
          while (next < count) {
            const i = next++;
            try {
              subs.push(await open(msg.url, tokens.length ? tokens[i % tokens.length] : undefined, msg.query));
              connected++;
            } catch (e) {
              failed++;
              err ??= e instanceof Error ? e.message : String(e);
            }
          }
        }),
      );
      return { connected, failed, ms: performance.now() - t0, firstError: err };
    }
    case "phase":
      lat = [];
      recvAt = [];
      recvJob = [];
      recvCursor = [];
      cursors = new Set();
      errors = 0;
      firstError = null;
      for (const s of subs) s.n = 0;
      return { ok: true };
    case "wait": {
      const t0 = performance.now();
      const min = msg.min as number;
      let reached = 0;
      for (const s of subs) if (s.alive && s.n >= min) reached++;
      let complete = true;
      if (reached < alive()) {
        complete = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            waiter = null;
            resolve(false);
          }, msg.timeoutMs ?? 30_000);
          waiter = {
            min,
            reached,
            resolve: () => {
              clearTimeout(timer);
              resolve(true);
            },
          };
        });
      }
      let got = 0;
      for (const s of subs) if (s.alive && s.n >= min) got++;
      return { complete, reached: got, alive: alive(), ms: performance.now() - t0 };
    }
    case "stats": {
      const sorted = Float64Array.from(lat).sort();
      const arr = Array.from(sorted);
      const sent = (msg.sent ?? {}) as Record<string, number>;
      const fromSend: number[] = [];
      for (let i = 0; i < recvAt.length; i++) {
        const t = sent[recvJob[i]!];
        if (t !== undefined) fromSend.push(recvAt[i]! - t);
      }
      fromSend.sort((a, b) => a - b);
      const committed = (msg.committed ?? {}) as Record<string, number>;
      const fromCommit: number[] = [];
      for (let i = 0; i < recvAt.length; i++) {
        const t = committed[recvCursor[i]!];
        if (t !== undefined) fromCommit.push(recvAt[i]! - t);
      }
      fromCommit.sort((a, b) => a - b);
      let minPerSub = Infinity;
      for (const s of subs) if (s.alive) minPerSub = Math.min(minPerSub, s.n);
      return {
        deliveries: lat.length,
        subscribers: alive(),
        ended,
        events: cursors.size,
        minPerSub: Number.isFinite(minPerSub) ? minPerSub : 0,
        p50: pct(arr, 50),
        p90: pct(arr, 90),
        p99: pct(arr, 99),
        max: arr.length ? arr[arr.length - 1] : null,
        min: arr.length ? arr[0] : null,
        errors,
        firstError,
        fromCommit: { n: fromCommit.length, p50: pct(fromCommit, 50), p99: pct(fromCommit, 99), max: fromCommit.length ? fromCommit[fromCommit.length - 1] : null },
        fromSend: { n: fromSend.length, p50: pct(fromSend, 50), p99: pct(fromSend, 99), max: fromSend.length ? fromSend[fromSend.length - 1] : null },
      };
    }
    case "close": {
      const n = subs.length;
      for (const s of subs) {
        s.alive = false;
        try {
          s.close();
        } catch {
          // already gone
        }
      }
      subs.length = 0;
      ended = 0;
      return { closed: n };
    }
    default:
      return { error: `unknown op ${JSON.stringify(msg.op)}` };
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("close", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
// One request at a time, in order (the parent waits for each answer).
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let out: unknown;
    try {
      out = await handle(JSON.parse(line) as Record<string, unknown>);
    } catch (err) {
      out = { error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  });
});
