// Shared by the SDK scripts: read the config, load an SDK from the folder the
// test installed it in, run each case and print one JSON report on stdout.
// The scripts only observe; tests/integration/test_fakellm_sdks.py asserts.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// The SDK package `name` as installed under cfg.modules/node_modules.
export function sdk(name) {
  const req = createRequire(cfg.modules + '/package.json');
  return { module: req(name), version: JSON.parse(readFileSync(
    cfg.modules + '/node_modules/' + name + '/package.json', 'utf8')).version };
}

// What an error looks like to the caller: the SDK's class, its status and
// the fields the SDK parsed from the body.
function describe(e) {
  return {
    class: e?.constructor?.name ?? typeof e, name: e?.name, status: e?.status,
    message: String(e?.message ?? e).slice(0, 600), code: e?.code ?? e?.error?.code ?? null,
    type: e?.type ?? e?.error?.type ?? e?.error?.error?.type ?? null, param: e?.param ?? null,
    request_id: e?.requestID ?? e?.request_id ?? null,
    headers: e?.headers && typeof e.headers.get === 'function'
      ? { 'retry-after': e.headers.get('retry-after'), 'request-id': e.headers.get('request-id'),
          'x-request-id': e.headers.get('x-request-id') }
      : null,
  };
}

// A fetch that passes every call through unchanged and notes what the SDK
// sent (path and headers): the attempts of its own retries, and the
// authentication and version headers it chose.
let sent = [];
export async function recordingFetch(url, init) {
  const u = new URL(String(url));
  sent.push({ path: u.pathname + u.search, method: init?.method ?? 'GET',
              headers: Object.fromEntries(new Headers(init?.headers ?? {})) });
  return fetch(url, init);
}

// Runs the cases in order; each returns what it observed.
export async function report(version, cases) {
  const out = { sdk_version: version, node: process.version, cases: {} };
  for (const [name, fn] of Object.entries(cases)) {
    const t0 = Date.now();
    sent = [];
    try {
      out.cases[name] = { ok: true, value: await fn() };
    } catch (e) {
      out.cases[name] = { ok: false, error: describe(e) };
    }
    out.cases[name].ms = Date.now() - t0;
    out.cases[name].requests = sent;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
