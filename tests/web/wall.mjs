// Drives headless Chromium (the system's /usr/bin/chromium) against the wall view, for
// tests/it/web.rs. Never downloads a browser.
//
// Usage: node wall.mjs URL
//
// Protocol (one JSON object per line):
// - on start it loads URL, waits until the page has its first picture and its event
//   stream is live, and prints {"event":"loaded","ok":true,"snapshot":{...}};
// - then it reads commands on stdin and answers each with one line:
//     {"cmd":"snapshot"}
//     {"cmd":"wait","selector":CSS,"attr":"status","equals":"serious","timeout_ms":10000}
//         -> {"ok":bool,"waited_ms":n,"snapshot":{...}}  (ok=false on timeout)
//     {"cmd":"wait_none","selector":CSS,"timeout_ms":10000}  (until nothing matches)
//         -> {"ok":bool,"waited_ms":n,"snapshot":{...}}
//     {"cmd":"geometry"}
//         -> {"ok":true,"viewport":{w,h},"scroll":{w,h},"pages":n,"cards":[{device,
//             x,y,w,h,value_px,visible}]}: every tile's box and its main value's
//             font size in CSS px
//     {"cmd":"click","selector":CSS}  -> {"ok":true,"snapshot":{...}}
//     {"cmd":"screenshot","path":FILE,"full_page":false}
//     {"cmd":"quit"}
// A snapshot lists every card, point and alarm with its data- attributes and text,
// the connection indicator, page errors, and whether the page was reloaded.
// Exits non-zero with a message on stderr when something cannot be done at all.

import { chromium } from 'playwright-core';
import readline from 'node:readline';

const url = process.argv[2];
if (!url) {
  console.error('usage: node wall.mjs URL');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// Never outlive the test that started us.
const guard = setTimeout(() => {
  console.error('wall.mjs: gave up after 120 s');
  process.exit(3);
}, 120_000);

let browser;
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
} catch (e) {
  console.error(`wall.mjs: cannot start ${executablePath}: ${e.message}`);
  process.exit(4);
}

const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
const errors = [];
let loads = 0;
page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error') errors.push(`console: ${m.text()}`);
});
page.on('load', () => {
  loads += 1;
});

async function snapshot() {
  const s = await page.evaluate(() => {
    const data = (e) => Object.assign({}, e.dataset);
    const text = (e, sel) => (e.querySelector(sel) || { textContent: null }).textContent;
    return {
      lang: document.documentElement.lang,
      title: document.title,
      ready: document.body.dataset.ready === 'true',
      conn: document.getElementById('conn').dataset.conn,
      unreachable: document.body.dataset.unreachable,
      pages: document.getElementById('rooms').dataset.pages,
      conn_text: document.getElementById('conn-text').textContent,
      clock: document.getElementById('clock-time').textContent,
      rooms: [...document.querySelectorAll('section.room')].map((r) => ({
        room: r.dataset.room,
        name: text(r, 'h2'),
      })),
      cards: [...document.querySelectorAll('.card')].map((c) => ({
        ...data(c),
        name: text(c, '.card-name'),
        label: text(c, '.card-label'),
        kind_text: text(c, '.card-kind'),
        status_text: text(c, '.card-status'),
      })),
      points: [...document.querySelectorAll('.point')].map((p) => ({
        ...data(p),
        label: text(p, '.label'),
        text: text(p, '.value'),
        unit: text(p, '.unit'),
        quality_text: text(p, '.quality'),
      })),
      alarms: [...document.querySelectorAll('#alarm-list .alarm')].map((a) => ({
        ...data(a),
        text: a.textContent,
      })),
      no_alarms_visible: getComputedStyle(document.getElementById('no-alarms')).display !== 'none',
      same_document: window.__wallTestMarker === 'first-load',
      events: Object.assign({}, window.wallStats),
    };
  });
  return { ...s, loads, errors: [...errors] };
}

try {
  await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  await page.waitForSelector('#conn[data-conn="live"]', { timeout: 20_000 });
  await page.evaluate(() => {
    window.__wallTestMarker = 'first-load';
  });
  out({ event: 'loaded', ok: true, snapshot: await snapshot() });
} catch (e) {
  let snap = null;
  try {
    snap = await snapshot();
  } catch (_) {
    /* the page may not exist */
  }
  out({ event: 'loaded', ok: false, error: e.message, snapshot: snap });
  await browser.close();
  process.exit(1);
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ ok: false, error: `bad command: ${line}` });
    continue;
  }
  try {
    if (cmd.cmd === 'snapshot') {
      out({ ok: true, snapshot: await snapshot() });
    } else if (cmd.cmd === 'wait') {
      const t0 = Date.now();
      let ok = true;
      let error;
      try {
        await page.waitForFunction(
          ({ selector, attr, equals }) => {
            const e = document.querySelector(selector);
            return !!e && e.dataset[attr] === equals;
          },
          { selector: cmd.selector, attr: cmd.attr, equals: cmd.equals },
          { timeout: cmd.timeout_ms || 10_000, polling: 100 },
        );
      } catch (e) {
        ok = false;
        error = e.message;
      }
      out({ ok, error, waited_ms: Date.now() - t0, snapshot: await snapshot() });
    } else if (cmd.cmd === 'wait_none') {
      const t0 = Date.now();
      let ok = true;
      let error;
      try {
        await page.waitForFunction(
          (selector) => document.querySelector(selector) === null,
          cmd.selector,
          { timeout: cmd.timeout_ms || 10_000, polling: 100 },
        );
      } catch (e) {
        ok = false;
        error = e.message;
      }
      out({ ok, error, waited_ms: Date.now() - t0, snapshot: await snapshot() });
    } else if (cmd.cmd === 'geometry') {
      const g = await page.evaluate(() => ({
        viewport: { w: window.innerWidth, h: window.innerHeight },
        scroll: { w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight },
        pages: Number(document.getElementById('rooms').dataset.pages),
        cards: [...document.querySelectorAll('.card')].map((c) => {
          const r = c.getBoundingClientRect();
          const v = c.querySelector('.point.main .value');
          const vr = v ? v.getBoundingClientRect() : null;
          return {
            device: c.dataset.device,
            x: r.x, y: r.y, w: r.width, h: r.height,
            value_px: v ? parseFloat(getComputedStyle(v).fontSize) : 0,
            value_box: vr ? { x: vr.x, y: vr.y, w: vr.width, h: vr.height } : null,
            visible: getComputedStyle(c).visibility !== 'hidden' && r.width > 0 && r.height > 0,
          };
        }),
      }));
      out({ ok: true, ...g });
    } else if (cmd.cmd === 'click') {
      await page.click(cmd.selector, { timeout: cmd.timeout_ms || 5_000 });
      out({ ok: true, snapshot: await snapshot() });
    } else if (cmd.cmd === 'screenshot') {
      await page.screenshot({ path: cmd.path, fullPage: !!cmd.full_page });
      out({ ok: true, path: cmd.path });
    } else if (cmd.cmd === 'quit') {
      break;
    } else {
      out({ ok: false, error: `unknown command ${cmd.cmd}` });
    }
  } catch (e) {
    out({ ok: false, error: e.message });
  }
}

await browser.close();
clearTimeout(guard);
process.exit(0);
