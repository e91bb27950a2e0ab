// The official `@anthropic-ai/sdk` npm SDK, default settings (its own
// anthropic-version and its Authorization: Bearer), against empq-fakellm.
import { cfg, sdk, report, recordingFetch as fetch } from './common.mjs';

const { module: m, version } = sdk('@anthropic-ai/sdk');
const Anthropic = m.Anthropic ?? m.default ?? m;
const client = new Anthropic({ apiKey: cfg.key, baseURL: cfg.base, fetch });
const messages = [{ role: 'user', content: 'I failed my driving test again and feel stupid.' }];
const ask = (model, extra = {}, c = client) => c.messages.create({ model, max_tokens: 200, messages, ...extra });

await report(version, {
  normal: async () => {
    const { data, response } = await ask('fake-warm', { system: 'Answer kindly and briefly.' }).withResponse();
    return { message: data, request_id_header: response.headers.get('request-id'),
             sdk_request_id: data._request_id ?? null };
  },
  thinking: async () => ask('fake-warm', { max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 1024 } }),
  thinking_small_budget: async () => ask('fake-warm', { max_tokens: 2000,
                                                        thinking: { type: 'enabled', budget_tokens: 100 } }),
  thinking_budget_over_max: async () => ask('fake-warm', { max_tokens: 1024,
                                                           thinking: { type: 'enabled', budget_tokens: 1024 } }),
  rate_limited: async () => ask('anthropic-rate'),
  rate_limited_then_ok: async () => {
    // Two at once on a model with one request in flight allowed: the second
    // gets a 429 with retry-after, the SDK waits and its retry succeeds.
    const c = new Anthropic({ apiKey: cfg.key, baseURL: cfg.base_limited, fetch });
    const both = await Promise.all([0, 1].map(() => ask('fake-warm', {}, c)));
    return both.map((r) => r.stop_reason);
  },
  overloaded: async () => ask('anthropic-overload'),
  refusal: async () => ask('anthropic-refusal'),
  safety: async () => ask('anthropic-safety'),
  quota: async () => ask('anthropic-quota'),
  wrong_key: async () => ask('fake-warm', {}, new Anthropic({ apiKey: 'sk-ant-wrong', baseURL: cfg.base, fetch })),
  wrong_version: async () => ask('fake-warm', {}, new Anthropic({
    apiKey: cfg.key, baseURL: cfg.base, fetch, defaultHeaders: { 'anthropic-version': '2023-10-01' } })),
});
