// The official `openai` npm SDK's Batch API calls against empq-fakellm:
// upload a JSONL, create a batch, poll it, read its output and error files,
// list, cancel; and the same request asked interactively. The script only
// records what the SDK returned; tests/integration/test_fakellm_batch.py asserts.
import { cfg, sdk, report, recordingFetch as fetch } from './common.mjs';

const { module: m, version } = sdk('openai');
const OpenAI = m.OpenAI ?? m.default ?? m;
const toFile = m.toFile;
const client = new OpenAI({ apiKey: cfg.key, baseURL: cfg.base + '/v1', fetch });
const failing = new OpenAI({ apiKey: cfg.key, baseURL: cfg.base_fail + '/v1', fetch });
const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];

// cfg.requests: [{custom_id, body}] -> the input file's lines.
const jsonl = (reqs) => reqs.map((r) => JSON.stringify({ custom_id: r.custom_id, method: 'POST',
  url: '/v1/chat/completions', body: r.body })).join('\n') + '\n';

async function upload(c, reqs, name = 'requests.jsonl') {
  return c.files.create({ file: await toFile(Buffer.from(jsonl(reqs)), name), purpose: 'batch' });
}

// Polls until the batch ends; returns every status seen and the last object.
async function poll(c, id) {
  const seen = [];
  for (let i = 0; i < 400; i++) {
    const b = await c.batches.retrieve(id);
    if (seen[seen.length - 1] !== b.status) seen.push(b.status);
    if (TERMINAL.includes(b.status)) return { seen, batch: b };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('batch ' + id + ' did not end: ' + seen.join(','));
}

const content = async (c, id) => (id ? (await c.files.content(id)).text() : null);

async function run(c, reqs, metadata) {
  const file = await upload(c, reqs);
  const created = await c.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
                                           completion_window: '24h', metadata });
  const { seen, batch } = await poll(c, created.id);
  return { file, created, seen, batch, output: await content(c, batch.output_file_id),
           errors: await content(c, batch.error_file_id) };
}

await report(version, {
  batch: async () => {
    const r = await run(client, cfg.requests, { study: 'demo', part: '1' });
    r.file_retrieved = await client.files.retrieve(r.file.id);
    r.output_file = r.batch.output_file_id ? await client.files.retrieve(r.batch.output_file_id) : null;
    const files = [];
    for await (const f of client.files.list({ purpose: 'batch' })) files.push(f);
    r.files_listed = files;
    r.batches_listed = (await client.batches.list({ limit: 10 })).data;
    return r;
  },
  interactive: async () => client.chat.completions.create(cfg.requests[0].body),
  cancel: async () => {
    const file = await upload(client, cfg.requests);
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
                                                  completion_window: '24h' });
    // cancel midway: once the first requests were answered
    let before = created;
    for (let i = 0; i < 200 && !(before.request_counts?.completed > 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
      before = await client.batches.retrieve(created.id);
    }
    const cancelling = await client.batches.cancel(created.id);
    const { seen, batch } = await poll(client, created.id);
    return { before, cancelling, seen, batch, output: await content(client, batch.output_file_id),
             errors: await content(client, batch.error_file_id) };
  },
  injected_failures: async () => run(failing, cfg.requests),
  invalid_file: async () => {
    const dup = [cfg.requests[0], cfg.requests[0]];
    const file = await upload(client, dup);
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions',
                                                  completion_window: '24h' });
    return poll(client, created.id);
  },
  not_jsonl: async () => upload(client, cfg.requests, 'requests.txt'),
  unknown_batch: async () => client.batches.retrieve('batch_doesnotexist'),
});
