// Drives headless Chromium (the system's /usr/bin/chromium) through the login page and
// the alarm console, for tests/it/web_auth.rs. Never downloads a browser.
//
// Usage: node console.mjs BASE_URL USER PASSWORD ALARM_NO COMMENT LOCK_USER
//
// 1. LOCK_USER: five wrong passwords on the login page; prints
//    {"step":"lockout","message": <the login page's message>}.
// 2. Opens BASE_URL/console without a session (sent to the login page), logs in as
//    USER, waits for the alarm row ALARM_NO, types COMMENT and presses "acknowledge";
//    prints {"step":"acked","status": <status line>, "state": <the row's state text>,
//    "details": [<journal detail texts>], "dialogs": n, "sinks": [<sink names in the
//    health table>], "points": [<points of the device shown>], "url": ...}.
// Exits non-zero with a message on stderr when a step cannot be done.

import { chromium } from 'playwright-core';

const [base, user, password, alarmNo, comment, lockUser] = process.argv.slice(2);
if (!lockUser) {
  console.error('usage: node console.mjs BASE_URL USER PASSWORD ALARM_NO COMMENT LOCK_USER');
  process.exit(2);
}
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const guard = setTimeout(() => {
  console.error('console.mjs: gave up after 90 s');
  process.exit(3);
}, 90_000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  let dialogs = 0;
  // 1. The lockout message.
  {
    const page = await (await browser.newContext()).newPage();
    page.on('dialog', (d) => { dialogs += 1; d.dismiss(); });
    await page.goto(base + '/login');
    let message = '';
    for (let i = 0; i < 5; i++) {
      await page.fill('#user', lockUser);
      await page.fill('#password', 'Wrong-password-' + i);
      const answered = page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST');
      await page.click('#go');
      await answered;
      await page.waitForFunction(() => document.getElementById('msg').textContent.length > 0);
      message = await page.textContent('#msg');
    }
    out({ step: 'lockout', message });
  }
  // 2. Log in and acknowledge from the console.
  const page = await (await browser.newContext()).newPage();
  page.on('dialog', (d) => { dialogs += 1; d.dismiss(); });
  await page.goto(base + '/console');
  await page.waitForURL(/\/login\?next=/, { timeout: 10_000 });
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.click('#go');
  await page.waitForURL(/\/console$/, { timeout: 10_000 });
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  const row = `#alarms tr[data-no="${alarmNo}"]`;
  await page.waitForSelector(row, { timeout: 15_000 });
  await page.fill(`${row} input.comment`, comment);
  await page.click(`${row} button.ack`);
  await page.waitForSelector('#status.ok', { timeout: 10_000 });
  await page.waitForFunction(
    ([sel, who]) => {
      const s = document.querySelector(sel + ' td.state');
      return s && s.textContent.includes(who);
    },
    [row, user],
    { timeout: 10_000 },
  );
  const status = await page.textContent('#status');
  const state = await page.textContent(`${row} td.state`);
  const details = await page.$$eval('#journal td.detail', (tds) => tds.map((t) => t.textContent));
  const scripts = await page.$$eval('script', (s) => s.length);
  await page.waitForSelector('#sinks tbody tr', { timeout: 10_000 });
  await page.waitForSelector('#points tbody tr', { timeout: 10_000 });
  const sinks = await page.$$eval('#sinks tbody tr', (rows) => rows.map((r) => r.getAttribute('data-sink')));
  const points = await page.$$eval('#points tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  out({ step: 'acked', status, state, details, dialogs, scripts, sinks, points, url: page.url() });
} catch (e) {
  console.error('console.mjs: ' + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  await browser.close();
}
