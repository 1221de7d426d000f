// GraphQL hardening: limits refuse abusive documents with QUERY_TOO_COMPLEX on both transports,
// large bodies and batches are refused, normal big pages still pass.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, gql, codeOf } from "../helpers/server.js";
import { authHeader } from "../helpers/auth.js";
import { connectRawWs, type RawWs } from "../helpers/subscribe.js";

let s: Awaited<ReturnType<typeof startServer>>;

before(async () => {
  s = await startServer();
});
after(async () => {
  await s?.close();
});

async function post(body: string, headers: Record<string, string> = {}) {
  const res = await fetch(s.graphqlUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json", ...authHeader(s.graphqlUrl, undefined), ...headers },
    body,
  });
  return { status: res.status, json: (await res.json().catch(() => null)) as any };
}

test("a full page (200 jobs with every field and their files) is within the limits", async () => {
  const r = await gql(
    s.graphqlUrl,
    `{ jobs(first: 200) { totalCount edges { cursor node { id displayName state owner priority errorCount progress { bytesTotal bytesTransferred filesTotal filesTransferred }
      times { createdAt modifiedAt } error { code message context } files(first: 200) { totalCount edges { node { id localPath remoteUrl bytesTotal bytesTransferred completed } } } } } } }`,
  );
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
});

test("depth, aliases, cost and tokens over the limits: QUERY_TOO_COMPLEX, HTTP 400", async () => {
  const deep = `{ jobs { edges { node { files { edges { node { job { files { edges { node { job { files { edges { node { id } } } } } } } } } } } } } } }`;
  const aliases = `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: viewer { user }`).join(" ")} }`;
  const cost = `{ a: jobs(first: 200) { edges { node { files(first: 200) { edges { node { id job { files(first: 200) { edges { node { id } } } } } } } } } } }`;
  const tokens = `{ viewer { ${Array.from({ length: 6000 }, () => "user").join(" ")} } }`;
  for (const [name, q] of Object.entries({ deep, aliases, cost, tokens })) {
    const r = await post(JSON.stringify({ query: q }));
    assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.errors[0].extensions.code, "QUERY_TOO_COMPLEX", `${name}: ${JSON.stringify(r.json.errors)}`);
    assert.equal(r.json.data ?? undefined, undefined);
  }
});

test("a body over 1 MiB is refused with 413; the server stays healthy", async () => {
  const big = JSON.stringify({ query: "{ viewer { user } }", variables: { pad: "x".repeat(2 * 1024 * 1024) } });
  const r = await post(big);
  assert.equal(r.status, 413);
  assert.equal(r.json?.errors?.[0]?.extensions?.code, "REQUEST_ENTITY_TOO_LARGE");
  const ok = await gql(s.graphqlUrl, `{ viewer { user } }`);
  assert.deepEqual(ok.data, { viewer: { user: "local" } });
});

test("batched requests (an array of operations) are refused", async () => {
  const r = await post(JSON.stringify([{ query: "{ viewer { user } }" }, { query: "{ viewer { user } }" }]));
  assert.equal(r.status, 400);
  assert.ok(r.json?.errors?.[0]?.extensions?.code, JSON.stringify(r.json));
});

test("field suggestions are not leaked", async () => {
  const r = await gql(s.graphqlUrl, `{ jobz { totalCount } }`);
  assert.equal(codeOf(r), "GRAPHQL_VALIDATION_FAILED");
  assert.doesNotMatch(r.errors![0]!.message, /Did you mean/);
});

test("over WebSocket a too-deep subscription gets an error for that id; the socket stays usable", async () => {
  let ws: RawWs | undefined;
  try {
    ws = await connectRawWs(s.wsUrl);
    await ws.until((m) => m.some((x) => x.type === "connection_ack"), "ack");
    ws.send({
      id: "deep",
      type: "subscribe",
      payload: { query: `subscription { jobStateChanged { job { files { edges { node { job { files { edges { node { job { files { edges { node { id } } } } } } } } } } } } } }` },
    });
    await ws.until((m) => m.some((x) => x.id === "deep" && x.type === "error"), "error for the deep one");
    const err = ws.messages.find((x) => x.id === "deep" && x.type === "error") as any;
    assert.equal(err.payload[0].extensions.code, "QUERY_TOO_COMPLEX");
    ws.send({ id: "ok", type: "subscribe", payload: { query: `subscription { jobStateChanged { state } }` } });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(ws.closed, null, "the socket is still open");
  } finally {
    ws?.close();
  }
});

test("no token: UNAUTHENTICATED with HTTP 401, introspection included", async () => {
  const res = await fetch(s.graphqlUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
    body: JSON.stringify({ query: "{ __schema { types { name } } }" }),
  });
  assert.equal(res.status, 401);
  const body = (await res.json()) as any;
  assert.equal(body.errors[0].extensions.code, "UNAUTHENTICATED");
  const authed = await gql(s.graphqlUrl, `{ __schema { queryType { name } } }`);
  assert.deepEqual(authed.data, { __schema: { queryType: { name: "Query" } } });
});
