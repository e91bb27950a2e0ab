// rating_browser.js: one participant's session on the rating site in
// headless Chromium (Playwright), on a phone-sized screen, keyboard only.
// Driven by test_rating_browser.py:
//
//   node rating_browser.js CONFIG.json
//
// CONFIG: {module, chromium, base, run, pid, study, session, shots, out,
// reload_at}. Writes a JSON report to `out` and a screenshot of every page
// to `shots`; exits 0 when the session ran (the Python side checks the
// report), 1 on a failure (the message on stderr).
'use strict';

const fs = require('fs');
const path = require('path');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(cfg.module);

function fail(msg) {
  throw new Error(msg);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const report = { answers: {}, pages: [], shots: [], dialogs: [], console_errors: [],
    page_errors: [], csp_violations: [], xss_items: [], focus_outline: null };
  try {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 },
      deviceScaleFactor: 1, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    page.on('dialog', async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => report.page_errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
    // A CSP violation would mean markup from the data reached the DOM as
    // code; escaping must stop it before the policy has to.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__csp = (window.__csp || []).concat([e.violatedDirective + ' ' + e.blockedURI]);
      });
    });
    // Anything leaving this machine (Prolific's redirect) is refused.
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.hostname === '127.0.0.1') return route.continue();
      return route.abort();
    });

    let n = 0;
    const shot = async (name) => {
      n += 1;
      const file = path.join(cfg.shots, `${String(n).padStart(2, '0')}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      report.shots.push(file);
    };
    const fitsPhone = async () => page.evaluate(
      () => document.documentElement.scrollWidth <= window.innerWidth);
    const state = async () => page.evaluate(() => ({
      url: location.pathname, title: document.title,
      h1: (document.querySelector('h1') || {}).textContent || null,
      progress: (document.querySelector('#progress') || {}).textContent || null,
      emotion: (document.querySelector('#emotion') || {}).textContent || null,
      situation: (document.querySelector('#situation') || {}).textContent || null,
      prompt: (document.querySelector('#prompt') || {}).textContent || null,
      response: (document.querySelector('#response') || {}).textContent || null,
      injected: document.querySelectorAll('#response *, #situation *, #prompt *').length,
      pos: (document.querySelector('input[name=pos]') || {}).value || null,
      code: (document.querySelector('#code') || {}).textContent || null,
      complete: (document.querySelector('#complete') || {}).href || null,
      xss: window.__xss === undefined ? null : window.__xss,
    }));
    // Keyboard-only navigation: wait for the next page after a key press.
    const pressAndWait = async (key) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press(key)]);
    };

    // 1. arrival with Prolific's parameters -> instructions
    const q = new URLSearchParams({ PROLIFIC_PID: cfg.pid, STUDY_ID: cfg.study,
      SESSION_ID: cfg.session });
    await page.goto(`${cfg.base}/study/${cfg.run}?${q}`, { waitUntil: 'load' });
    let s = await state();
    if (s.h1 !== 'Instructions') fail(`arrival: expected the instructions, got ${JSON.stringify(s)}`);
    const text = await page.evaluate(() => document.body.innerText);
    for (const w of ['Cognitive empathy', 'Affective empathy', 'Compassionate empathy'])
      if (!text.includes(w)) fail(`instructions lack "${w}"`);
    report.pages.push({ kind: 'instructions', fits_phone: await fitsPhone(), url: s.url });
    await shot('instructions');
    // the Start button has the focus: Enter starts
    const active = await page.evaluate(() => document.activeElement && document.activeElement.id);
    if (active !== 'start') fail(`Start button not focused (focus on ${active})`);
    await pressAndWait('Enter');

    // 2. ten dialogues; a reload in the middle; three ways of answering by keyboard
    const keyRating = { 1: 3, 2: 2, 3: 1 }; // keys 1/2/3 = Good/Okay/Bad
    for (let i = 0; i < 10; i++) {
      s = await state();
      if (s.progress !== `Dialogue ${i + 1} of 10`) fail(`dialogue ${i}: progress ${s.progress}`);
      if (Number(s.pos) !== i) fail(`dialogue ${i}: form position ${s.pos}`);
      report.pages.push({ kind: 'item', pos: i, fits_phone: await fitsPhone(), emotion: s.emotion,
        situation: s.situation, prompt: s.prompt, response: s.response, injected: s.injected });
      if (s.response.includes('<script>') || s.response.includes('<img'))
        report.xss_items.push({ pos: i, shown_as_text: s.response, injected: s.injected });
      const markup = s.response.includes('<script>') || s.response.includes('<img');
      await shot(`dialogue-${String(i + 1).padStart(2, '0')}${markup ? '-markup-as-text' : ''}`);
      if (i === cfg.reload_at) {
        await page.reload({ waitUntil: 'load' });
        const r = await state();
        if (r.progress !== `Dialogue ${i + 1} of 10`) fail(`after reload: ${r.progress}`);
        report.pages.push({ kind: 'reload', pos: i, progress: r.progress });
        await shot(`dialogue-${String(i + 1).padStart(2, '0')}-reloaded`);
      }
      if (i % 3 === 0) {
        // a digit key (keys.js)
        const key = String(1 + (i % 3 === 0 ? (i / 3) % 3 : 0));
        report.answers[i] = keyRating[key];
        await pressAndWait(key);
      } else {
        // Tab to a button (Good, Okay, Bad in order), Enter
        const presses = 1 + (i % 3);
        await page.evaluate(() => document.activeElement && document.activeElement.blur());
        for (let t = 0; t < presses; t++) await page.keyboard.press('Tab');
        const f = await page.evaluate(() => {
          const a = document.activeElement;
          const cs = getComputedStyle(a);
          return { id: a.id, value: a.value, outline: cs.outlineStyle, width: cs.outlineWidth };
        });
        if (!['good', 'okay', 'bad'].includes(f.id)) fail(`Tab x${presses} reached ${f.id}`);
        if (report.focus_outline === null) {
          report.focus_outline = f;
          await shot(`dialogue-${String(i + 1).padStart(2, '0')}-focus`);
        }
        report.answers[i] = Number(f.value);
        await pressAndWait('Enter');
      }
    }

    // 3. the completion code
    s = await state();
    report.done = { h1: s.h1, code: s.code, complete: s.complete, title: s.title };
    report.pages.push({ kind: 'done', fits_phone: await fitsPhone() });
    await shot('completion');
    report.final = { title: await page.title(), xss: s.xss,
      csp: await page.evaluate(() => window.__csp || []) };
    report.csp_violations = report.final.csp;
  } finally {
    fs.writeFileSync(cfg.out, JSON.stringify(report, null, 1));
    await browser.close();
  }
})().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
