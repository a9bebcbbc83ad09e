// Wall view script: builds the cards from the embedded layout, loads the values from
// the API, then follows the event stream. No framework; text goes in with textContent
// only, so nothing from a device or a config file can inject markup.
(function () {
  'use strict';

  const SITE = JSON.parse(document.getElementById('site').textContent);
  const S = SITE.strings;
  const LOCALE = S.locale;
  const RANK = { ok: 0, stale: 1, normal: 2, serious: 3 };

  const readings = new Map(); // device \0 point -> readings entry
  let alarms = [];
  let offsetMs = 0; // gateway clock minus this browser's clock
  let lastDataAt = 0; // browser time of the last data received
  let streamOpen = false;
  let es = null;
  const startedAt = Date.now();
  const cards = new Map(); // device id -> { dev, card, statusEl, footEl, points }
  // Events received by type: for a person (or a test) checking the live link.
  const stats = { refresh: 0, device: 0, alarms: 0 };
  window.wallStats = stats;

  const $ = function (id) { return document.getElementById(id); };
  const key = function (d, p) { return d + '\u0000' + p; };
  const serverNow = function () { return Date.now() + offsetMs; };
  function fill(tpl, vars) {
    return String(tpl).replace(/\{(\w+)\}/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(vars, k) ? String(vars[k]) : m;
    });
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function setText(e, t) { if (e.textContent !== t) e.textContent = t; }
  function setData(e, k, v) { if (e.dataset[k] !== v) e.dataset[k] = v; }

  // ---- formatting -------------------------------------------------------------
  // A number at the point's resolution, as the gateway's texts write it (src/texts):
  // at most `d` decimals, trailing zeros dropped, rounding half away from zero on the
  // binary value, digit groups of three from four digits on, the language's separators.
  function fmtNum(v, d) {
    if (!isFinite(v)) return '—';
    const f = Math.pow(10, d);
    const r = Math.round(Math.abs(v) * f) / f;
    let s = r.toFixed(d);
    if (d > 0) s = s.replace(/0+$/, '').replace(/\.$/, '');
    const parts = s.split('.');
    let int = parts[0];
    if (int.length > 3) int = int.replace(/\B(?=(\d{3})+(?!\d))/g, S.number.group);
    return (v < 0 && r !== 0 ? '-' : '') + int + (parts[1] ? S.number.decimal + parts[1] : '');
  }
  function fmtDuration(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 120) return fill(S.dur.s, { n: sec });
    if (sec < 7200) return fill(S.dur.m, { n: Math.round(sec / 60) });
    if (sec < 172800) return fill(S.dur.h, { n: Math.floor(sec / 3600), m: Math.floor((sec % 3600) / 60) });
    return fill(S.dur.d, { n: Math.floor(sec / 86400) });
  }
  function fmtAgo(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 2) return S.ago.now;
    if (sec < 120) return fill(S.ago.s, { n: sec });
    if (sec < 7200) return fill(S.ago.m, { n: Math.round(sec / 60) });
    if (sec < 172800) return fill(S.ago.h, { n: Math.floor(sec / 3600) });
    return fill(S.ago.d, { n: Math.floor(sec / 86400) });
  }
  function ageOf(ts) { return (serverNow() - Date.parse(ts)) / 1000; }
  function fmtTime(ts) {
    return new Date(Date.parse(ts)).toLocaleTimeString(LOCALE, {
      hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
    });
  }
  function fmtValue(def, v) {
    if (v === null || v === undefined) return { text: '—', unit: def ? def.unit : '' };
    if (typeof v === 'boolean') return { text: v ? S.yes : S.no, unit: '' };
    if (typeof v === 'string') {
      const names = def && def.values;
      return { text: (names && names[v]) || v.replace(/_/g, ' '), unit: '' };
    }
    if (typeof v === 'number') {
      if (def && def.duration) return { text: fmtDuration(v), unit: '' };
      return { text: fmtNum(v, def ? def.decimals : 2), unit: def ? def.unit : '' };
    }
    return { text: String(v), unit: '' };
  }

  // ---- layout -------------------------------------------------------------------
  function build() {
    document.title = SITE.title;
    setText($('title'), SITE.title);
    setText($('alarms-title'), S.alarms_title);
    setText($('no-alarms'), S.no_alarms);
    const main = $('rooms');
    SITE.rooms.forEach(function (room) {
      const sec = el('section', 'room');
      sec.dataset.room = room.id;
      sec.append(el('h2', null, room.name));
      const grid = el('div', 'cards');
      room.devices.forEach(function (dev) {
        const card = el('article', 'card');
        card.dataset.device = dev.id;
        card.dataset.kind = dev.kind;
        card.dataset.status = 'stale';
        const head = el('div', 'card-head');
        head.append(el('div', 'card-name', dev.name));
        if (dev.label) head.append(el('div', 'card-label', dev.label));
        head.append(el('div', 'card-kind', dev.kind_label + (dev.location ? ' · ' + dev.location : '')));
        const statusEl = el('div', 'card-status');
        head.append(statusEl);
        card.append(head);
        const list = el('ul', 'points');
        const points = new Map();
        dev.points.forEach(function (p) {
          const row = el('li', 'point');
          row.dataset.device = dev.id;
          row.dataset.point = p.name;
          row.dataset.status = 'stale';
          const reading = el('span', 'reading');
          const valueEl = el('span', 'value', '—');
          const unitEl = el('span', 'unit', p.unit);
          reading.append(valueEl, unitEl);
          const qualEl = el('span', 'quality');
          row.append(el('span', 'label', p.label), reading, qualEl);
          list.append(row);
          points.set(p.name, { def: p, row: row, valueEl: valueEl, unitEl: unitEl, qualEl: qualEl });
        });
        card.append(list);
        const footEl = el('div', 'card-foot');
        card.append(footEl);
        grid.append(card);
        cards.set(dev.id, { dev: dev, card: card, statusEl: statusEl, footEl: footEl, points: points });
      });
      sec.append(grid);
      main.append(sec);
    });
  }

  // ---- rendering ------------------------------------------------------------------
  function alarmLevel(device, point) {
    let level = null;
    alarms.forEach(function (a) {
      if (a.device !== device || (point !== undefined && a.point !== point)) return;
      if (level === null || RANK[a.level] > RANK[level]) level = a.level;
    });
    return level;
  }

  function renderDevice(id) {
    const c = cards.get(id);
    if (!c) return;
    const reasons = [];
    let freshCount = 0;
    let newest = null;
    c.points.forEach(function (pe, name) {
      const r = readings.get(key(id, name));
      const fresh = !!r && r.quality === 'good' && r.value !== null;
      const level = alarmLevel(id, name);
      const status = level || (fresh ? 'ok' : 'stale');
      if (fresh) freshCount += 1;
      setData(pe.row, 'status', status);
      setData(pe.row, 'fresh', String(fresh));
      setData(pe.row, 'quality', r ? r.quality : 'never');
      setData(pe.row, 'value', r && r.value !== null ? String(r.value) : '');
      const f = fmtValue(pe.def, r ? r.value : null);
      setText(pe.valueEl, f.text);
      setData(pe.valueEl, 'kind', typeof (r && r.value) === 'number' ? 'number' : 'text');
      setText(pe.unitEl, f.unit);
      let q = '';
      if (!fresh) {
        // Never read and merely "stale" is said as "no data yet"; any other reason
        // is said as it is.
        const never = !r || (r.value === null && !r.ts && (r.quality === 'stale' || r.quality === 'good'));
        q = never ? S.quality.never : (S.quality[r.quality] || r.quality);
        if (reasons.indexOf(q) < 0) reasons.push(q);
        if (r && r.ts) q += ' · ' + fill(S.last_good, { age: fmtAgo(ageOf(r.ts)) });
      }
      setText(pe.qualEl, q);
      if (r && r.ts && (newest === null || r.ts > newest)) newest = r.ts;
    });
    // A card is grey only when none of its values is fresh (the device is silent);
    // single old values are hatched on their own row and named in the status line.
    const level = alarmLevel(id);
    const status = level || (freshCount === 0 && c.points.size > 0 ? 'stale' : 'ok');
    setData(c.card, 'status', status);
    setData(c.card, 'partial', String(reasons.length > 0 && freshCount > 0));
    const parts = [];
    if (level) parts.push(S.level[level]);
    if (reasons.length) parts.push(reasons.join(', '));
    if (!parts.length) parts.push(S.status_ok);
    setText(c.statusEl, parts.join(' · '));
    setText(c.footEl, newest ? fill(S.updated, { age: fmtAgo(ageOf(newest)) }) : '');
  }

  // The list is rebuilt only when the alarms change (a rebuild would restart the
  // pulse animation); every second only the durations are rewritten.
  let alarmSig = null;
  const alarmWhen = []; // [span, since]
  function renderAlarms() {
    const sorted = alarms.slice().sort(function (a, b) {
      return (RANK[b.level] - RANK[a.level]) || (Date.parse(b.since) - Date.parse(a.since));
    });
    const sig = JSON.stringify(sorted);
    if (sig === alarmSig) {
      alarmWhen.forEach(function (w) { setText(w[0], whenText(w[1])); });
      return;
    }
    alarmSig = sig;
    alarmWhen.length = 0;
    setData($('alarms'), 'count', String(sorted.length));
    $('alarm-list').replaceChildren.apply($('alarm-list'), sorted.map(function (a) {
      const c = cards.get(a.device);
      const pe = c && c.points.get(a.point);
      const li = el('li', 'alarm');
      li.dataset.key = a.key;
      li.dataset.level = a.level;
      li.dataset.device = a.device;
      li.dataset.point = a.point;
      li.append(el('span', 'level', S.level[a.level] || a.level));
      li.append(el('span', 'msg', a.message));
      const when = el('span', 'when', whenText(a.since));
      alarmWhen.push([when, a.since]);
      li.append(when);
      let who = c ? c.dev.name + (c.dev.label ? ' [' + c.dev.label + ']' : '') : a.device;
      if (a.point) who += ' — ' + (pe ? pe.def.label : a.point);
      li.append(el('span', 'who', who));
      if (a.value !== null && a.value !== undefined) {
        const v = fmtValue(pe && pe.def, a.value);
        const vt = (v.text + (v.unit ? ' ' + v.unit : ''));
        const tt = a.threshold === null || a.threshold === undefined ? '—' :
          fmtValue(pe && pe.def, a.threshold).text + (v.unit ? ' ' + v.unit : '');
        li.append(el('span', 'detail', fill(S.value_threshold, { v: vt, t: tt })));
      }
      return li;
    }));
  }
  function whenText(since) {
    return fill(S.since, { t: fmtTime(since) }) + ' (' + fmtDuration(ageOf(since)) + ')';
  }

  function connState() {
    const now = Date.now();
    if (!lastDataAt) return (now - startedAt) / 1000 > SITE.lost_after_s ? 'never' : 'connecting';
    const age = (now - lastDataAt) / 1000;
    if (age > SITE.lost_after_s) return 'lost';
    if (!streamOpen) return 'reconnecting';
    return age > SITE.delayed_after_s ? 'delayed' : 'live';
  }

  function renderConn() {
    const st = connState();
    setData($('conn'), 'conn', st);
    setData(document.body, 'conn', st);
    const age = lastDataAt ? fmtAgo((Date.now() - lastDataAt) / 1000) : '';
    setText($('conn-text'), fill(S.conn[st], { age: age }));
  }

  function renderClock() {
    const now = new Date(serverNow());
    setText($('clock-time'), now.toLocaleTimeString(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }));
    setText($('clock-date'), now.toLocaleDateString(LOCALE, { weekday: 'long', day: '2-digit', month: '2-digit', year: 'numeric' }));
  }

  function renderAll() {
    cards.forEach(function (_, id) { renderDevice(id); });
    renderAlarms();
    renderConn();
    renderClock();
  }

  // ---- data -------------------------------------------------------------------------
  function applyReadings(list) {
    (list || []).forEach(function (r) { readings.set(key(r.device, r.point), r); });
  }
  function gotData(generatedAt) {
    const t = Date.parse(generatedAt);
    if (!isNaN(t)) offsetMs = t - Date.now();
    lastDataAt = Date.now();
  }
  function fetchJson(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function reloadForNewLayout() {
    // At most one reload a minute, so a flapping config cannot make the wall blink.
    const last = Number(sessionStorage.getItem('wall-reload') || 0);
    if (Date.now() - last < 60000) return;
    sessionStorage.setItem('wall-reload', String(Date.now()));
    location.reload();
  }

  function connect() {
    if (es) es.close();
    es = new EventSource('api/v1/events');
    es.onopen = function () { streamOpen = true; renderConn(); };
    es.onerror = function () {
      streamOpen = false;
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
      renderConn();
    };
    es.addEventListener('refresh', function (e) {
      const d = JSON.parse(e.data);
      stats.refresh += 1;
      if (d.layout && d.layout !== SITE.layout_key) reloadForNewLayout();
      readings.clear();
      applyReadings(d.readings);
      alarms = d.alarms || [];
      gotData(d.generated_at);
      streamOpen = true;
      renderAll();
    });
    es.addEventListener('device', function (e) {
      const d = JSON.parse(e.data);
      stats.device += 1;
      applyReadings(d.readings);
      gotData(d.generated_at);
      streamOpen = true;
      renderDevice(d.device);
      renderConn();
    });
    es.addEventListener('alarms', function (e) {
      const d = JSON.parse(e.data);
      stats.alarms += 1;
      alarms = d.alarms || [];
      gotData(d.generated_at);
      streamOpen = true;
      renderAll();
    });
  }

  build();
  renderAll();
  Promise.all([fetchJson('api/v1/readings'), fetchJson('api/v1/alarms')]).then(function (res) {
    applyReadings(res[0].readings);
    alarms = res[1].alarms || [];
    gotData(res[0].generated_at);
    renderAll();
  }).catch(function () { /* the event stream brings the picture as soon as it connects */ })
    .then(function () {
      document.body.dataset.ready = 'true';
      connect();
    });
  setInterval(renderAll, 1000);
})();
