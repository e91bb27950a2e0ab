// The official `@google/genai` npm SDK, default settings (3.6.1 calls
// /v1/models/M:generateContent with x-goog-api-key), against empq-fakellm.
import { cfg, sdk, report, recordingFetch as fetch } from './common.mjs';

const { module: m, version } = sdk('@google/genai');
const { GoogleGenAI } = m;
const client = new GoogleGenAI({ apiKey: cfg.key, httpOptions: { baseUrl: cfg.base, fetch } });
const contents = 'I failed my driving test again and feel stupid.';
const ask = (model, config, c = client) => c.models.generateContent({ model, contents, config });
// What a caller reads: the SDK's text getter (thought parts left out) and the raw candidate.
const seen = (r) => ({ text: r.text ?? null, candidates: r.candidates, usageMetadata: r.usageMetadata,
                       responseId: r.responseId, modelVersion: r.modelVersion,
                       promptFeedback: r.promptFeedback ?? null });
const off = ['HARM_CATEGORY_HARASSMENT', 'HARM_CATEGORY_HATE_SPEECH', 'HARM_CATEGORY_SEXUALLY_EXPLICIT',
             'HARM_CATEGORY_DANGEROUS_CONTENT'].map((category) => ({ category, threshold: 'BLOCK_NONE' }));

await report(version, {
  normal: async () => seen(await ask('fake-warm', { systemInstruction: 'Answer kindly and briefly.' })),
  v1beta: async () => seen(await ask('fake-warm', undefined, new GoogleGenAI({
    apiKey: cfg.key, httpOptions: { baseUrl: cfg.base, apiVersion: 'v1beta', fetch } }))),
  thinking: async () => seen(await ask('fake-reason-g', { thinkingConfig: { thinkingBudget: 512,
                                                                            includeThoughts: true } })),
  thinking_max_tokens: async () => seen(await ask('fake-reason-g', { maxOutputTokens: 100,
                                                                     thinkingConfig: { thinkingBudget: 512 } })),
  rate_limited: async () => seen(await ask('gemini-rate')),
  rate_limited_sdk_retry: async () => seen(await ask('gemini-rate-retry', undefined, new GoogleGenAI({
    apiKey: cfg.key, httpOptions: { baseUrl: cfg.base, fetch, retryOptions: { attempts: 3, initialDelay: 0.1 } } }))),
  rate_limited_then_ok_sdk_retry: async () => {
    // Two at once on a model with one request in flight allowed: the second
    // gets a 429; the SDK's own retry (retryOptions: off by default) succeeds.
    const c = new GoogleGenAI({ apiKey: cfg.key, httpOptions: { baseUrl: cfg.base_limited, fetch,
                                                                 retryOptions: { attempts: 3, initialDelay: 1 } } });
    const both = await Promise.all([0, 1].map(() => ask('fake-warm', undefined, c)));
    return both.map((r) => r.candidates[0].finishReason);
  },
  unavailable: async () => seen(await ask('gemini-5xx')),
  safety_default: async () => seen(await ask('gemini-safety')),
  safety_block_none: async () => seen(await ask('gemini-safety', { safetySettings: off })),
  safety_unknown_category: async () => seen(await ask('fake-warm', {
    safetySettings: [{ category: 'HARM_CATEGORY_KINDNESS', threshold: 'BLOCK_NONE' }] })),
  quota: async () => seen(await ask('gemini-quota')),
  wrong_key: async () => seen(await ask('fake-warm', undefined, new GoogleGenAI({
    apiKey: 'AIza-wrong', httpOptions: { baseUrl: cfg.base, fetch } }))),
});
