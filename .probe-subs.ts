import { startServer, ok } from "./test/helpers/server.js";
import { connectWs, subscribeSse, connectRawWs } from "./test/helpers/subscribe.js";
const s = await startServer();
try {
  const SUB = `subscription($jobId: ID, $after: String){ jobStateChanged(jobId:$jobId, after:$after){ cursor state previousState kind job { id state } } }`;
  const d = await ok(s.graphqlUrl, `mutation { createJob(input:{displayName:"x", files:[{remoteUrl:"http://127.0.0.1:9/a", localPath:"a"}]}) { job { id state } } }`);
  console.log(JSON.stringify(d));
  const c = await connectWs(s.wsUrl);
  for (const after of ["abc", "9223372036854775808", "9999999999999999999", "99999999999999999999", "0"]) {
    const sub = c.subscribe(SUB, { after });
    await sub.events.until((x) => x.payloads.length > 0 || x.errors.length > 0 || x.completed, after, 3000).catch((e) => console.log(String(e)));
    console.log(after, JSON.stringify(sub.events.payloads), JSON.stringify(sub.events.errors), sub.events.completed);
    sub.unsubscribe();
  }
  const sub = c.subscribe(SUB, { jobId: "6f1c9b7e-1111-4222-8333-444455556666" });
  await sub.events.untilErrorOrEnd("nf").catch(String);
  console.log("NF", JSON.stringify(sub.events.payloads), JSON.stringify(sub.events.errors), sub.events.completed);
  const syn = c.subscribe("subscription { jobStateChanged( ", {});
  await syn.events.untilErrorOrEnd("syn").catch(String);
  console.log("SYN", JSON.stringify(syn.events.payloads), JSON.stringify(syn.events.errors), syn.events.completed, c.stats);
  for (const after of ["abc", "9223372036854775808"]) {
    const e = subscribeSse(s.graphqlUrl, SUB, { after });
    await e.events.untilErrorOrEnd("sse").catch((x) => console.log(String(x)));
    console.log("SSE", after, await e.response, JSON.stringify(e.events.payloads), e.events.errors.map(String));
    await e.close();
  }
  const raw = await connectRawWs(s.wsUrl);
  raw.send({ id: "bad1", type: "subscribe", payload: { query: "subscription {" } });
  await raw.until((m) => m.some((x) => x.id === "bad1"), "bad1").catch(String);
  console.log(JSON.stringify(raw.messages), raw.closed);
  await raw.close();
  await c.dispose();
  console.log("subs", s.app.feed.subscriberCount);
} finally {
  await s.close();
}
