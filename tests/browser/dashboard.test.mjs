// The login page at / in a real headless Chromium against the real server binary: first-run
// setup, sign out, a wrong password, sign in; under the page's strict CSP, with no violation.
//
// Needs what tracker.test.mjs needs. Run: `node --test` in this folder.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

const PASSWORD = 'a browser-chosen password';

let server;
let browser;

before(async () => {
  server = await startServer(); // no admin password: the page offers the first-run setup
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test('setup, sign out, a wrong password, sign in: all under the strict CSP', async () => {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const violations = [];
  tab.on('pageerror', (error) => assert.fail(`the page threw: ${error}`));
  tab.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  const stats = async () =>
    tab.evaluate(async () => (await fetch('/api/stats/main?site_id=x.test&period=today')).status);

  await tab.goto(`${server.api}/`);
  await tab.getByText('Set the admin password').waitFor();
  assert.equal(await stats(), 401, 'nothing is readable before setup');
  await tab.fill('#setup-password', PASSWORD);
  await tab.fill('#setup-confirm', PASSWORD);
  await tab.click('#setup button');
  await tab.getByRole('heading', { name: 'Signed in' }).waitFor();

  const [cookie] = await context.cookies();
  assert.equal(cookie.name, 'mallard_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(await tab.evaluate(() => document.cookie), '', 'scripts cannot read the session');
  assert.equal(await stats(), 200, 'the session reads stats');

  await tab.reload();
  await tab.getByRole('heading', { name: 'Signed in' }).waitFor();
  await tab.click('#logout');
  await tab.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await stats(), 401, 'signed out');

  await tab.fill('#login-password', 'not the password at all');
  await tab.click('#login button');
  await tab.getByText('wrong password').waitFor();
  await tab.fill('#login-password', PASSWORD);
  await tab.click('#login button');
  await tab.getByRole('heading', { name: 'Signed in' }).waitFor();
  assert.equal(await stats(), 200);

  assert.deepEqual(violations, [], 'the page needs nothing the CSP forbids');
  await context.close();
});
