// The tracking script in a real headless Chromium against the real server binary. Every case
// asserts what the server stored, read back through the stats API (signed in as the admin).
//
// Needs: /usr/bin/chromium (Debian's chromium), the built server (MALLARD_BIN, default
// $CARGO_TARGET_DIR/dist/mallard-metrics from `cargo xtask dist`), `npm ci` here. Run: `node --test` in this folder.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { freePort, login, startServer } from './server.mjs';

const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const PASSWORD = 'browser-test-admin-password';

let server;
let api;
let cookie; // mallard_session=…, for reading stats
let site;
let browser;
let siteServer;

// Test pages: /<case>.html, built from the query of each test; the script comes from the server.
function page(domain, attributes, body) {
  return `<!doctype html><html><head><title>${domain}</title>
<script>window.mallard = window.mallard || function () { (window.mallard.q = window.mallard.q || []).push(arguments) }</script>
<script defer src="${api}/mallard.js" data-domain="${domain}" data-include-localhost ${attributes}></script>
</head><body>${body}
<script>document.addEventListener('click', function (e) { if (e.target.closest('a')) e.preventDefault() })</script>
</body></html>`;
}

const pages = new Map();

before(async () => {
  server = await startServer({ MALLARD_ADMIN_PASSWORD: PASSWORD });
  api = server.api;
  cookie = await login(api, PASSWORD);
  const sitePort = await freePort();
  site = `http://127.0.0.1:${sitePort}`;
  siteServer = createServer((req, res) => {
    if (req.url === '/vendor/plausible.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(readFileSync(new URL('node_modules/@plausible-analytics/tracker/plausible.js', import.meta.url)));
    }
    const html = pages.get(new URL(req.url, site).pathname.split('/')[1]);
    res.writeHead(html ? 200 : 404, { 'content-type': 'text/html' });
    res.end(html || 'not found');
  });
  await new Promise((r) => siteServer.listen(sitePort, '127.0.0.1', r));
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Without --enable-automation, navigator.webdriver is false: the script counts the page.
    ignoreDefaultArgs: ['--enable-automation'],
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-blink-features=AutomationControlled'],
  });
});

after(async () => {
  await browser?.close();
  siteServer?.close();
  server?.stop();
});

async function open(name, attributes, body, options = {}) {
  pages.set(name, page(name, attributes, body));
  const context = await browser.newContext({ userAgent: CHROME_UA, ...options });
  const tab = await context.newPage();
  tab.on('pageerror', (error) => assert.fail(`the page threw: ${error}`));
  await tab.goto(`${site}/${name}/index`);
  await tab.waitForFunction(() => window.mallard && !window.mallard.q);
  return { tab, context };
}

async function stats(path, domain) {
  const response = await fetch(`${api}/api/stats/${path}${path.includes('?') ? '&' : '?'}site_id=${domain}&period=today`, {
    headers: { cookie },
  });
  assert.equal(response.status, 200);
  return response.json();
}

// Events are sent with fetch(keepalive); poll until the expected rows are stored.
async function eventually(read, expected) {
  let last;
  for (let i = 0; i < 50; i++) {
    last = await read();
    try {
      assert.deepEqual(last, expected);
      return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(last, expected);
}

const pageValues = (domain) => async () => (await stats('breakdown/pages', domain)).map((p) => [p.value, p.pageviews]);
const eventValues = (domain) => async () => (await stats('breakdown/events', domain)).map((e) => [e.value, e.events]);

test('a page load is one pageview', async () => {
  const { context } = await open('load', '', '<p>hello</p>');
  await eventually(pageValues('load'), [['/load/index', 1]]);
  await context.close();
});

test('single-page-app navigation: pushState, replaceState, popstate', async () => {
  const { tab, context } = await open('spa', '', '');
  await tab.evaluate(() => history.pushState({}, '', '/spa/second'));
  await tab.evaluate(() => history.replaceState({}, '', '/spa/third'));
  await tab.evaluate(() => history.replaceState({ same: 1 }, '', '/spa/third'));
  await tab.evaluate(() => history.back());
  await eventually(pageValues('spa'), [['/spa/index', 2], ['/spa/second', 1], ['/spa/third', 1]]);
  await context.close();
});

test('hash mode counts #/route changes as pages', async () => {
  const { tab, context } = await open('hash', 'data-hash', '');
  await tab.evaluate(() => { location.hash = '#/settings'; });
  await eventually(pageValues('hash'), [['/hash/index', 1], ['/hash/index#/settings', 1]]);
  await context.close();
});

test('outbound links, downloads and tagged elements are events when opted in', async () => {
  const body = `<a id="out" href="https://elsewhere.example/page">out</a>
    <a id="file" href="/files/report.pdf">pdf</a>
    <a id="local" href="/clicks/other">local</a>
    <button id="tagged" class="btn mallard-event-name=Sign+up mallard-event-plan=pro">go</button>`;
  const { tab, context } = await open('clicks', 'data-outbound-links data-file-downloads data-tagged-events', body);
  await tab.click('#out');
  await tab.click('#file');
  await tab.click('#local');
  await tab.click('#tagged');
  await eventually(eventValues('clicks'), [['File Download', 1], ['Outbound Link: Click', 1], ['Sign up', 1]]);
  const plans = await stats('breakdown/events', 'clicks');
  assert.ok(plans.every((e) => e.visitors === 1));
  await context.close();
});

test('clicks send nothing without the opt-in attributes', async () => {
  const { tab, context } = await open('noclicks', '', '<a id="out" href="https://elsewhere.example/">out</a>');
  await tab.click('#out');
  await eventually(pageValues('noclicks'), [['/noclicks/index', 1]]);
  assert.deepEqual(await eventValues('noclicks')(), []);
  await context.close();
});

test('custom events with revenue and props, queued before load and after', async () => {
  pages.set('custom', page('custom', '', '').replace(
    '</script>\n<script defer',
    "</script><script>mallard('Early', {props: {step: 1}})</script>\n<script defer",
  ));
  const context = await browser.newContext({ userAgent: CHROME_UA });
  const tab = await context.newPage();
  await tab.goto(`${site}/custom/index`);
  await tab.waitForFunction(() => window.mallard && !window.mallard.q);
  const called = await tab.evaluate(
    () => new Promise((resolve) => window.mallard('Purchase', { revenue: 49.99, currency: 'USD', props: { plan: 'pro' }, callback: () => resolve(true) })),
  );
  assert.equal(called, true, 'the callback runs');
  await eventually(eventValues('custom'), [['Early', 1], ['Purchase', 1]]);
  const purchase = (await stats('breakdown/events', 'custom')).find((e) => e.value === 'Purchase');
  assert.equal(purchase.revenue, 49.99);
  await context.close();
});

test('the ignore flag and automated browsers send nothing', async () => {
  const { tab, context } = await open('ignored', '', '');
  await tab.evaluate(() => { localStorage.mallard_ignore = 'true'; });
  await tab.reload();
  await tab.evaluate(() => history.pushState({}, '', '/ignored/later'));
  const automated = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const robot = await (await automated.newContext({ userAgent: CHROME_UA })).newPage();
  pages.set('robot', page('robot', '', ''));
  await robot.goto(`${site}/robot/index`);
  await robot.waitForFunction(() => window.mallard && !window.mallard.q);
  await new Promise((r) => setTimeout(r, 500));
  await automated.close();
  assert.deepEqual(await pageValues('ignored')(), [['/ignored/index', 1]], 'only the load before the flag counts');
  assert.deepEqual(await pageValues('robot')(), [], 'navigator.webdriver pages are not counted');
  await context.close();
});

test("Plausible's official tracker pointed at our server is counted", async () => {
  pages.set('plausible', `<!doctype html><html><head><title>p</title><script type="module">
    import { init, track } from '/vendor/plausible.js';
    init({ domain: 'plausible.test', endpoint: '${api}/api/event', captureOnLocalhost: true, logging: false });
    track('Signup', { props: { plan: 'pro' } });
  </script></head><body></body></html>`);
  const context = await browser.newContext({ userAgent: CHROME_UA });
  const tab = await context.newPage();
  tab.on('pageerror', (error) => assert.fail(`the page threw: ${error}`));
  await tab.goto(`${site}/plausible/index`);
  await eventually(pageValues('plausible.test'), [['/plausible/index', 1]]);
  await eventually(eventValues('plausible.test'), [['Signup', 1]]);
  await context.close();
});

test('localhost pages are skipped unless data-include-localhost is set', async () => {
  pages.set('local', page('local', '', '').replace(' data-include-localhost', ''));
  const context = await browser.newContext({ userAgent: CHROME_UA });
  const tab = await context.newPage();
  await tab.goto(`${site}/local/index`);
  await tab.waitForFunction(() => window.mallard && !window.mallard.q);
  await tab.evaluate(() => new Promise((resolve) => window.mallard('Tried', { callback: resolve })));
  assert.deepEqual(await pageValues('local')(), []);
  assert.deepEqual(await eventValues('local')(), []);
  await context.close();
});

test('Do-Not-Track is honoured only with data-respect-dnt', async () => {
  const dnt = () => Object.defineProperty(navigator, 'doNotTrack', { get: () => '1' });
  for (const [name, attributes] of [['dnt-respected', 'data-respect-dnt'], ['dnt-ignored', '']]) {
    pages.set(name, page(name, attributes, ''));
    const context = await browser.newContext({ userAgent: CHROME_UA });
    await context.addInitScript(dnt);
    const tab = await context.newPage();
    await tab.goto(`${site}/${name}/index`);
    await tab.waitForFunction(() => window.mallard && !window.mallard.q);
    await tab.evaluate(() => new Promise((resolve) => window.mallard('Probe', { callback: resolve })));
    await context.close();
  }
  assert.deepEqual(await pageValues('dnt-respected')(), []);
  await eventually(pageValues('dnt-ignored'), [['/dnt-ignored/index', 1]]);
});

test('the 404 helper, and sendBeacon when fetch is unavailable', async () => {
  pages.set('beacon', page('beacon', '', ''));
  const context = await browser.newContext({ userAgent: CHROME_UA });
  await context.addInitScript(() => { window.fetch = undefined; });
  const tab = await context.newPage();
  tab.on('pageerror', (error) => assert.fail(`the page threw: ${error}`));
  await tab.goto(`${site}/beacon/index`);
  await tab.waitForFunction(() => window.mallard && !window.mallard.q);
  await tab.evaluate(() => window.mallard('404'));
  await eventually(eventValues('beacon'), [['404', 1]]);
  await eventually(pageValues('beacon'), [['/beacon/index', 1]]);
  await context.close();
});

test('a prerendered page counts only once it is shown', async () => {
  pages.set('prerender', page('prerender', '', ''));
  const context = await browser.newContext({ userAgent: CHROME_UA });
  // Chromium sets document.prerendering while a page is prerendered and fires
  // prerenderingchange when it is activated; simulate both around a normal load.
  await context.addInitScript(() => {
    window.__prerendering = true;
    Object.defineProperty(document, 'prerendering', { get: () => window.__prerendering });
  });
  const tab = await context.newPage();
  await tab.goto(`${site}/prerender/index`);
  await tab.waitForFunction(() => window.mallard && !window.mallard.q);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await pageValues('prerender')(), [], 'nothing while prerendered');
  await tab.evaluate(() => {
    window.__prerendering = false;
    document.dispatchEvent(new Event('prerenderingchange'));
  });
  await eventually(pageValues('prerender'), [['/prerender/index', 1]]);
  await context.close();
});
