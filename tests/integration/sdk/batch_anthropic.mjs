// The official `@anthropic-ai/sdk` npm SDK's Message Batches calls against
// empq-fakellm: create, retrieve until ended, results() (the SDK follows
// results_url and decodes the JSONL), list, cancel; and the same request
// asked interactively. tests/integration/test_fakellm_batch.py asserts.
import { cfg, sdk, report, recordingFetch as fetch } from './common.mjs';

const { module: m, version } = sdk('@anthropic-ai/sdk');
const Anthropic = m.Anthropic ?? m.default ?? m;
const client = new Anthropic({ apiKey: cfg.key, baseURL: cfg.base, fetch });
const failing = new Anthropic({ apiKey: cfg.key, baseURL: cfg.base_fail, fetch });

async function poll(c, id) {
  const seen = [];
  for (let i = 0; i < 400; i++) {
    const b = await c.messages.batches.retrieve(id);
    if (seen[seen.length - 1] !== b.processing_status) seen.push(b.processing_status);
    if (b.processing_status === 'ended') return { seen, batch: b };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('batch ' + id + ' did not end: ' + seen.join(','));
}

async function results(c, id) {
  const out = [];
  for await (const r of await c.messages.batches.results(id)) out.push(r);
  return out;
}

async function run(c, requests) {
  const created = await c.messages.batches.create({ requests });
  const { seen, batch } = await poll(c, created.id);
  return { created, seen, batch, results: await results(c, created.id) };
}

await report(version, {
  batch: async () => {
    const r = await run(client, cfg.requests);
    r.listed = (await client.messages.batches.list({ limit: 10 })).data;
    return r;
  },
  interactive: async () => client.messages.create(cfg.requests[0].params),
  results_before_end: async () => {
    const created = await client.messages.batches.create({ requests: cfg.requests });
    try {
      return await results(client, created.id);
    } finally {
      await client.messages.batches.cancel(created.id);
    }
  },
  cancel: async () => {
    const created = await client.messages.batches.create({ requests: cfg.requests });
    // cancel midway: once the first requests were answered
    let before = created;
    for (let i = 0; i < 200 && !(before.request_counts.succeeded > 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
      before = await client.messages.batches.retrieve(created.id);
    }
    const canceling = await client.messages.batches.cancel(created.id);
    const { seen, batch } = await poll(client, created.id);
    return { before, canceling, seen, batch, results: await results(client, created.id) };
  },
  injected_failures: async () => run(failing, cfg.requests),
  duplicate_ids: async () => client.messages.batches.create({ requests: [cfg.requests[0], cfg.requests[0]] }),
  unknown_batch: async () => client.messages.batches.retrieve('msgbatch_doesnotexist'),
});
