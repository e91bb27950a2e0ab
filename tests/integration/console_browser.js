// console_browser.js: the study console in headless Chromium (Playwright),
// driven by test_console_browser.py:
//
//   node console_browser.js CONFIG.json
//
// CONFIG: {module, chromium, base, token, run, known, sources, xss, query,
// watching, finished, shots, out}. Opens the console with its token, watches
// the runs page's progress change without a reload (writes `watching` once
// it has the first count, so the test starts the worker then), waits for the
// run's end and for the file `finished` (ratings and report written by the
// test), then visits every page at 1280 and 390 px wide with a screenshot of
// each, reads the known prompt's row of the side-by-side page, and checks
// that a fresh browser without the token gets 401 everywhere. Writes a JSON
// report to `out`; exits 0 when the session ran (the Python side checks the
// report), 1 on a failure (the message on stderr).
'use strict';

const fs = require('fs');
const path = require('path');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(cfg.module);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(200);
  }
}

(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const report = { progress: [], reloaded: null, pages: [], shots: [], row: null, filtered: null,
    xss: null, title: null, unauthorized: [], page_errors: [], csp_violations: [], dialogs: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__csp = (window.__csp || []).concat([e.violatedDirective + ' ' + e.blockedURI]);
      });
    });
    const page = await context.newPage();
    page.on('dialog', async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => report.page_errors.push(String(e)));
    const csp = async () => {
      const v = await page.evaluate(() => window.__csp || []);
      report.csp_violations.push(...v);
    };

    // the token once, in the address; the console answers with a cookie
    // and sends the browser on to / without it
    const first = await page.goto(`${cfg.base}/?token=${encodeURIComponent(cfg.token)}`);
    if (first.status() !== 200) throw new Error(`first visit: status ${first.status()}`);
    report.landed = page.url();

    // live progress: the overall bar of the run, read without reloading
    const sel = `section.run[id="run-${cfg.run}"] .bar[data-src=""] .count`;
    const count = async () => page.$eval(sel, (e) => e.textContent);
    await page.evaluate(() => { window.__stay = 'same page'; });
    report.progress.push(await count());
    fs.writeFileSync(cfg.watching, 'watching\n');
    await until('the progress to change', async () => {
      const c = await count();
      if (c !== report.progress[report.progress.length - 1]) report.progress.push(c);
      return report.progress.length >= 3;
    }, 60000);
    report.reloaded = (await page.evaluate(() => window.__stay)) !== 'same page';
    const shotsDir = cfg.shots;
    let n = 0;
    const shot = async (name) => {
      for (const [w, h] of [[1280, 900], [390, 844]]) {
        await page.setViewportSize({ width: w, height: h });
        await sleep(100);
        n += 1;
        const file = path.join(shotsDir, `${String(n).padStart(2, '0')}-${name}-${w}.png`);
        await page.screenshot({ path: file });
        report.shots.push(file);
        if (w === 390) {
          const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
          report.pages.push({ name, fits_phone: fits });
        }
      }
      await page.setViewportSize({ width: 1280, height: 800 });
      await csp();
    };
    await shot('runs-live');

    // the end of the run, then the files the test writes after it
    await until('the run to finish', async () => page.evaluate(async (run) => {
      const r = await fetch('/progress.json', { cache: 'no-store' });
      const j = await r.json();
      const x = j.runs.find((y) => y.id === run);
      return x && x.done + x.dead === x.total && x.total > 0;
    }, cfg.run), 120000);
    await until('the ratings and the report', async () => fs.existsSync(cfg.finished), 120000);

    const visit = async (name, url) => {
      const r = await page.goto(cfg.base + url);
      report.pages.push({ name, status: r.status() });
      await shot(name);
    };
    await visit('runs', '/');
    await visit('run', `/run/${cfg.run}`);
    await visit('responses', `/run/${cfg.run}/responses`);
    // the README's picture: the top of the side-by-side page
    await page.screenshot({ path: path.join(shotsDir, 'readme-console-responses.png'),
      clip: { x: 0, y: 0, width: 1280, height: 560 } });
    report.row = await page.evaluate((known) => {
      const tr = document.querySelector(`tr[data-prompt="${known}"]`);
      if (!tr) return null;
      const heads = Array.from(document.querySelectorAll('thead th[data-source]')).map((e) => e.dataset.source);
      const cells = Array.from(tr.querySelectorAll('td.resp')).map((td) => ({
        source: td.dataset.source,
        column: heads.indexOf(td.dataset.source) + 1,
        index: td.cellIndex,
        text: (td.querySelector('.text') || td).textContent,
        meta: (td.querySelector('.meta') || { textContent: '' }).textContent,
      }));
      return { prompt: tr.querySelector('.speaker').textContent, cells };
    }, cfg.known);
    report.xss = await page.evaluate(() => (window.__xss === undefined ? null : window.__xss));
    report.title = await page.title();
    report.scripts = await page.evaluate(() => Array.from(document.scripts).map((s) => s.src));
    // the filter form (GET, no script): a text search
    await page.fill('input[name="q"]', cfg.query);
    await Promise.all([page.waitForNavigation(), page.click('#filters button[type="submit"]')]);
    report.filtered = await page.evaluate(() => Array.from(document.querySelectorAll('tr[data-prompt]'))
      .map((e) => e.dataset.prompt));
    await shot('responses-search');
    await visit('dead', `/run/${cfg.run}/dead`);
    await visit('raters', `/run/${cfg.run}/raters`);
    await visit('report', `/run/${cfg.run}/report`);

    // a browser without the token: 401 on every page
    const other = await browser.newContext();
    const p2 = await other.newPage();
    for (const u of ['/', '/progress.json', `/run/${cfg.run}`, `/run/${cfg.run}/responses`,
      `/run/${cfg.run}/dead`, `/run/${cfg.run}/raters`, `/run/${cfg.run}/report`,
      `/run/${cfg.run}/file/responses.jsonl`, '/static/console.css']) {
      const r = await p2.goto(cfg.base + u);
      report.unauthorized.push({ url: u, status: r.status() });
    }
    await other.close();
    fs.writeFileSync(cfg.out, JSON.stringify(report, null, 1));
    await browser.close();
    process.exit(0);
  } catch (e) {
    fs.writeFileSync(cfg.out, JSON.stringify(report, null, 1));
    process.stderr.write(`${e.stack || e}\n`);
    await browser.close();
    process.exit(1);
  }
})();
