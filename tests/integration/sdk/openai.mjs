// The official `openai` npm SDK, default settings, against empq-fakellm.
import { cfg, sdk, report, recordingFetch as fetch } from './common.mjs';

const { module: m, version } = sdk('openai');
const OpenAI = m.OpenAI ?? m.default ?? m;
const client = new OpenAI({ apiKey: cfg.key, baseURL: cfg.base + '/v1', fetch });
const user = [{ role: 'developer', content: 'Answer kindly and briefly.' },
              { role: 'user', content: 'I failed my driving test again and feel stupid.' }];
const ask = (model, extra = {}) => client.chat.completions.create({ model, messages: user, ...extra });

await report(version, {
  normal: async () => {
    const { data, response } = await ask('fake-warm').withResponse();
    return { completion: data, request_id_header: response.headers.get('x-request-id'),
             sdk_request_id: data._request_id ?? null };
  },
  reasoning: async () => ask('fake-reason-o', { reasoning_effort: 'high', max_completion_tokens: 2000 }),
  reasoning_budget_used: async () => ask('fake-reason-o', { max_completion_tokens: 100 }),
  reasoning_max_tokens: async () => ask('fake-reason-o', { max_tokens: 100 }),
  rate_limited: async () => ask('openai-rate'),
  rate_limited_then_ok: async () => {
    // Two at once on a model with one request in flight allowed: the second
    // gets a 429 with Retry-After, the SDK waits and its retry succeeds.
    const c = new OpenAI({ apiKey: cfg.key, baseURL: cfg.base_limited + '/v1', fetch });
    const both = await Promise.all([0, 1].map(() => c.chat.completions.create({ model: 'fake-warm', messages: user })));
    return both.map((r) => r.choices[0].finish_reason);
  },
  server_error: async () => ask('openai-5xx'),
  refusal: async () => ask('openai-refusal'),
  content_filter: async () => ask('openai-safety'),
  quota: async () => ask('openai-quota'),
  wrong_key: async () => new OpenAI({ apiKey: 'sk-wrong-key-1234', baseURL: cfg.base + '/v1', fetch })
    .chat.completions.create({ model: 'fake-warm', messages: user }),
});
