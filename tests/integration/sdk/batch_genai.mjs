// The official `@google/genai` npm SDK's batch calls (Gemini Batch Mode with
// inlined requests) against empq-fakellm: batches.create, batches.get until
// the job ends, the inlined responses, batches.list, batches.cancel; and the
// same request asked interactively. tests/integration/test_fakellm_batch.py
// asserts.
import { cfg, sdk, report, recordingFetch as fetch } from './common.mjs';

const { module: m, version } = sdk('@google/genai');
const { GoogleGenAI } = m;
const client = new GoogleGenAI({ apiKey: cfg.key, httpOptions: { baseUrl: cfg.base, fetch } });
const failing = new GoogleGenAI({ apiKey: cfg.key, httpOptions: { baseUrl: cfg.base_fail, fetch } });
const MODEL = 'fake-warm';
const ENDED = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED'];

async function poll(c, name) {
  const seen = [];
  for (let i = 0; i < 400; i++) {
    const job = await c.batches.get({ name });
    if (seen[seen.length - 1] !== job.state) seen.push(job.state);
    if (ENDED.includes(job.state)) return { seen, job };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('batch ' + name + ' did not end: ' + seen.join(','));
}

// What a caller reads of each inlined response: the SDK's text getter, the
// error, the metadata it sent.
const read = (job) => (job.dest?.inlinedResponses ?? []).map((r) => ({
  metadata: r.metadata ?? null, text: r.response ? r.response.text ?? null : null,
  usage: r.response?.usageMetadata ?? null, finish: r.response?.candidates?.[0]?.finishReason ?? null,
  error: r.error ?? null }));

async function run(c, displayName) {
  const created = await c.batches.create({ model: MODEL, src: cfg.requests, config: { displayName } });
  const { seen, job } = await poll(c, created.name);
  return { created, seen, job: { name: job.name, state: job.state, displayName: job.displayName,
                                 model: job.model, createTime: job.createTime, endTime: job.endTime },
           responses: read(job) };
}

await report(version, {
  batch: async () => {
    const r = await run(client, 'sdk-batch');
    const pager = await client.batches.list({ config: { pageSize: 10 } });
    r.listed = pager.page.map((j) => ({ name: j.name, state: j.state, displayName: j.displayName }));
    return r;
  },
  interactive: async () => {
    const q = cfg.requests[0];
    const r = await client.models.generateContent({ model: MODEL, contents: q.contents, config: q.config });
    return { text: r.text, usage: r.usageMetadata };
  },
  cancel: async () => {
    const created = await client.batches.create({ model: MODEL, src: cfg.requests,
                                                  config: { displayName: 'sdk-cancel' } });
    // cancel midway: a third of the delay in, some requests are answered
    await new Promise((r) => setTimeout(r, 600));
    const cancelled = await client.batches.cancel({ name: created.name });
    const { seen, job } = await poll(client, created.name);
    return { cancelled: cancelled ?? null, seen, state: job.state, responses: read(job) };
  },
  injected_failures: async () => run(failing, 'sdk-fail'),
  unknown_batch: async () => client.batches.get({ name: 'batches/doesnotexist' }),
});
