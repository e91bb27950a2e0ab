// rating_browser.js: participants' sessions on the rating site in headless
// Chromium (Playwright), on a phone-sized screen, keyboard first. Driven by
// test_rating_browser.py:
//
//   node rating_browser.js CONFIG.json
//
// CONFIG: {module, chromium, base, run, pid, study, session, shots, out,
// reload_at, n, decline_pid, fillers, full_pid}. Every participant page is
// photographed at 390 and 1280 px wide (NN-NAME-390.png, NN-NAME-1280.png);
// on every rating page the three buttons are measured at 320, 390 and 1280
// px. Writes a JSON report to `out`; exits 0 when the sessions ran (the
// Python side checks the report), 1 on a failure (the message on stderr).
'use strict';

const fs = require('fs');
const path = require('path');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(cfg.module);

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const NARROW = { width: 320, height: 640 };

function fail(msg) {
  throw new Error(msg);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const report = { answers: {}, checks: [], pages: [], shots: [], dialogs: [], console_errors: [],
    page_errors: [], csp_violations: [], xss_items: [], focus_outline: null, buttons: [],
    scroll: {} };
  try {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1,
      isMobile: true, hasTouch: true });
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
    // A screenshot at phone width, then at desktop width, back to the phone.
    const shot = async (name) => {
      n += 1;
      const stem = path.join(cfg.shots, `${String(n).padStart(2, '0')}-${name}`);
      await page.screenshot({ path: `${stem}-390.png`, fullPage: true });
      await page.setViewportSize(DESKTOP);
      await page.screenshot({ path: `${stem}-1280.png`, fullPage: true });
      await page.setViewportSize(PHONE);
      report.shots.push(`${stem}-390.png`, `${stem}-1280.png`);
    };
    const fitsPhone = async () => page.evaluate(
      () => document.documentElement.scrollWidth <= window.innerWidth);
    // The three rating buttons at a width: boxes, order, one row, same size.
    const measure = async (label) => {
      for (const vp of [NARROW, PHONE, DESKTOP]) {
        await page.setViewportSize(vp);
        const m = await page.evaluate(() => [...document.querySelectorAll('.choices button')].map(
          (b) => { const r = b.getBoundingClientRect();
            return { id: b.id, x: r.x, y: r.y, w: r.width, h: r.height }; }));
        const fits = await fitsPhone();
        report.buttons.push({ page: label, width: vp.width, boxes: m, fits });
      }
      await page.setViewportSize(PHONE);
    };
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
      text: document.body.innerText,
      scrollY: window.scrollY,
      focus: document.activeElement ? document.activeElement.tagName + '#' + document.activeElement.id : null,
      xss: window.__xss === undefined ? null : window.__xss,
    }));
    // Keyboard-only navigation: wait for the next page after a key press.
    const pressAndWait = async (key) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press(key)]);
    };
    const clickAndWait = async (sel) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(sel)]);
    };
    const arrive = async (pid, prolific) => {
      const q = prolific ? new URLSearchParams({ PROLIFIC_PID: pid, STUDY_ID: cfg.study,
        SESSION_ID: cfg.session }) : new URLSearchParams({ participant: pid });
      await page.goto(`${cfg.base}/study/${cfg.run}?${q}`, { waitUntil: 'load' });
      return state();
    };

    // 1. a participant who declines: the consent page, then the end
    let s = await arrive(cfg.decline_pid, true);
    if (s.h1 !== 'About this study') fail(`arrival: expected the consent page, got ${s.h1}`);
    report.scroll.consent = s.scrollY;
    report.consent = { text: s.text, fits_phone: await fitsPhone() };
    report.pages.push({ kind: 'consent', fits_phone: await fitsPhone() });
    await shot('consent');
    await clickAndWait('#decline');
    s = await state();
    report.declined = { h1: s.h1, text: s.text };
    report.pages.push({ kind: 'declined', fits_phone: await fitsPhone() });
    await shot('consent-declined');

    // 2. the participant of the session: agree by keyboard (Tab, Enter)
    s = await arrive(cfg.pid, true);
    if (s.h1 !== 'About this study') fail(`arrival: expected the consent page, got ${s.h1}`);
    await page.keyboard.press('Tab');
    s = await state();
    if (s.focus !== 'BUTTON#agree') fail(`Tab from the top reached ${s.focus}, not the agree button`);
    await pressAndWait('Enter');
    s = await state();
    if (s.h1 !== 'Instructions') fail(`after consent: expected the instructions, got ${s.h1}`);
    report.scroll.instructions = s.scrollY;
    report.instructions_focus = s.focus;
    for (const w of ['Cognitive empathy', 'Affective empathy', 'Compassionate empathy'])
      if (!s.text.includes(w)) fail(`instructions lack "${w}"`);
    report.instructions_text = s.text;
    report.pages.push({ kind: 'instructions', fits_phone: await fitsPhone(), url: s.url });
    await shot('instructions');
    // no autofocus (it would scroll a phone past the top): Tab reaches Start
    await page.keyboard.press('Tab');
    s = await state();
    if (s.focus !== 'BUTTON#start') fail(`Tab reached ${s.focus}, not Start`);
    await pressAndWait('Enter');

    // 3. the dialogues; a reload in the middle; three ways of answering by keyboard
    const keyRating = { 1: 3, 2: 2, 3: 1 }; // keys 1/2/3 = Good/Okay/Bad
    for (let i = 0; i < cfg.n; i++) {
      s = await state();
      if (s.progress !== `Dialogue ${i + 1} of ${cfg.n}`) fail(`dialogue ${i}: progress ${s.progress}`);
      if (Number(s.pos) !== i) fail(`dialogue ${i}: form position ${s.pos}`);
      const check = s.emotion === 'attention check';
      report.pages.push({ kind: check ? 'check' : 'item', pos: i, fits_phone: await fitsPhone(),
        emotion: s.emotion, situation: s.situation, prompt: s.prompt, response: s.response,
        injected: s.injected });
      if (s.response.includes('<script>') || s.response.includes('<img'))
        report.xss_items.push({ pos: i, shown_as_text: s.response, injected: s.injected });
      const markup = s.response.includes('<script>') || s.response.includes('<img');
      await measure(check ? `check-${i}` : `dialogue-${i}`);
      if (check || i === 0 || markup)
        await shot(`${check ? 'attention-check' : 'dialogue'}-${String(i + 1).padStart(2, '0')}${markup ? '-markup-as-text' : ''}`);
      if (i === cfg.reload_at) {
        await page.reload({ waitUntil: 'load' });
        const r = await state();
        if (r.progress !== `Dialogue ${i + 1} of ${cfg.n}`) fail(`after reload: ${r.progress}`);
        report.pages.push({ kind: 'reload', pos: i, progress: r.progress });
      }
      if (check) report.checks.push(i);
      if (i % 3 === 0) {
        // a digit key (keys.js)
        const key = String(1 + (i / 3) % 3);
        if (!check) report.answers[i] = keyRating[key];
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
        if (!check) report.answers[i] = Number(f.value);
        await pressAndWait('Enter');
      }
    }

    // 4. the end-of-study questions
    s = await state();
    if (s.h1 !== 'A few last questions') fail(`after the dialogues: expected the questions, got ${s.h1}`);
    report.pages.push({ kind: 'questions', fits_phone: await fitsPhone() });
    await shot('questions');
    await page.check(`input[name=q_age][value="${cfg.age_choice}"]`);
    await page.fill('textarea[name=q_comments]', cfg.comment);
    await clickAndWait('#finish');

    // 5. the completion code
    s = await state();
    report.done = { h1: s.h1, code: s.code, complete: s.complete, title: s.title, text: s.text };
    report.pages.push({ kind: 'done', fits_phone: await fitsPhone() });
    await shot('completion');
    report.final = { title: await page.title(), xss: s.xss,
      csp: await page.evaluate(() => window.__csp || []) };
    report.csp_violations = report.final.csp;

    // 6. the other places are taken (agree on the consent page); the next participant: study full
    for (const f of cfg.fillers) {
      await arrive(f, false);
      await clickAndWait('#agree');
    }
    const resp = await page.goto(`${cfg.base}/study/${cfg.run}?${new URLSearchParams({
      PROLIFIC_PID: cfg.full_pid })}`, { waitUntil: 'load' });
    s = await state();
    report.full = { status: resp.status(), h1: s.h1, text: s.text };
    report.pages.push({ kind: 'full', fits_phone: await fitsPhone() });
    await shot('study-full');
  } finally {
    fs.writeFileSync(cfg.out, JSON.stringify(report, null, 1));
    await browser.close();
  }
})().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
