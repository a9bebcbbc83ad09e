// Wall view script: builds the cards from the embedded layout, loads the values from
// the API, then follows the event stream. No framework; text goes in with textContent
// only, so nothing from a device or a config file can inject markup.
(function () {
  'use strict';

  const SITE = JSON.parse(document.getElementById('site').textContent);
  const S = SITE.strings;
  const LOCALE = S.locale;
  const RANK = { ok: 0, stale: 1, pending: 2, normal: 3, serious: 4 };

  const readings = new Map(); // device \0 point -> readings entry
  let alarms = [];
  let offsetMs = 0; // gateway clock minus this browser's clock
  let lastDataAt = 0; // browser time of the last data received
  let streamOpen = false;
  let es = null;
  const startedAt = Date.now();
  const cards = new Map(); // device id -> { dev, card, statusEl, footEl, points }
  // Events received by type: for a person (or a test) checking the live link.
  const stats = { refresh: 0, device: 0, alarms: 0, beeps: 0 };
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
    if (typeof v === 'boolean') {
      const w = def && S.flags[def.name];
      return { text: w ? w[v ? 1 : 0] : (v ? S.yes : S.no), unit: '' };
    }
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
  // Rooms are rows; in each room the devices are tiles grouped by system, the systems
  // in the same order in every room (SITE.systems). A tile shows its main point large
  // (dev.main[0]), the next two small, and keeps every other point in the document
  // (hidden) so nothing configured is missing from the page's data.
  const systemEls = new Map(); // system id -> summary chip
  function build() {
    document.title = SITE.title;
    setText($('title'), SITE.title);
    setText($('alarms-title'), S.alarms_title);
    setText($('no-alarms'), S.no_alarms);
    setText($('unreachable-title'), S.unreachable_title);
    (SITE.systems || []).forEach(function (s) {
      const li = el('li', null, s.name);
      li.dataset.system = s.id;
      li.dataset.status = 'ok';
      $('systems').append(li);
      systemEls.set(s.id, li);
    });
    const main = $('rooms');
    SITE.rooms.forEach(function (room) {
      const sec = el('section', 'room');
      sec.dataset.room = room.id;
      sec.append(el('h2', null, room.name));
      const groups = el('div', 'systems');
      (SITE.systems || []).forEach(function (sys) {
        const devs = room.devices.filter(function (d) { return d.system === sys.id; });
        if (!devs.length) return;
        const g = el('div', 'sys');
        g.dataset.system = sys.id;
        g.style.flex = devs.length + ' 1 0';
        g.append(el('div', 'sys-name', sys.name));
        const grid = el('div', 'cards');
        devs.forEach(function (dev) { grid.append(buildCard(dev)); });
        g.append(grid);
        groups.append(g);
      });
      sec.append(groups);
      main.append(sec);
    });
  }

  function buildCard(dev) {
    const card = el('article', 'card');
    card.dataset.device = dev.id;
    card.dataset.kind = dev.kind;
    card.dataset.system = dev.system;
    card.dataset.status = 'stale';
    card.title = dev.name + (dev.location ? ' · ' + dev.location : '');
    const head = el('div', 'card-head');
    head.append(el('div', 'card-label', dev.label || ''));
    head.append(el('div', 'card-name', dev.name));
    card.append(head);
    card.append(el('div', 'card-kind', dev.kind_label + (dev.location ? ' · ' + dev.location : '')));
    const list = el('ul', 'points');
    const points = new Map();
    const main = dev.main || [];
    const ordered = main.map(function (n) {
      return dev.points.find(function (p) { return p.name === n; });
    }).filter(Boolean).concat(dev.points.filter(function (p) { return main.indexOf(p.name) < 0; }));
    ordered.forEach(function (p) {
      const rank = main.indexOf(p.name);
      const row = el('li', 'point' + (rank === 0 ? ' main' : rank > 0 ? ' sub' : ''));
      row.dataset.device = dev.id;
      row.dataset.point = p.name;
      row.dataset.status = 'stale';
      const reading = el('span', 'reading');
      const valueEl = el('span', 'value', '—');
      const unitEl = el('span', 'unit', p.unit);
      reading.append(valueEl, unitEl);
      const qualEl = el('span', 'quality');
      row.append(el('span', 'label', p.label), reading, qualEl);
      row.title = p.label;
      list.append(row);
      points.set(p.name, { def: p, row: row, valueEl: valueEl, unitEl: unitEl, qualEl: qualEl });
    });
    card.append(list);
    const statusEl = el('div', 'card-status');
    card.append(statusEl);
    const footEl = el('div', 'card-foot');
    card.append(footEl);
    cards.set(dev.id, { dev: dev, card: card, statusEl: statusEl, footEl: footEl, points: points });
    return card;
  }

  // ---- paging -----------------------------------------------------------------------
  // Rooms are dealt into pages that fit the screen (measured, not guessed); with more
  // than one page the wall turns a page every SITE.page_s seconds.
  let pages = [[]];
  let page = 0;
  // A small site uses the room it has: tiles and values grow (--s, at most 2) as long
  // as everything still fits; a crowded one shrinks them down to 0.8 (the main value
  // never below 40 px) before rooms are paged.
  function fitScale() {
    const main = $('rooms');
    let s = 2;
    for (; s > 0.8; s = Math.round((s - 0.1) * 10) / 10) {
      main.style.setProperty('--s', String(s));
      if (main.scrollHeight <= main.clientHeight && main.scrollWidth <= main.clientWidth) break;
    }
    main.style.setProperty('--s', String(s));
    setData(main, 'scale', String(s));
  }
  function paginate() {
    const main = $('rooms');
    const rooms = Array.prototype.slice.call(main.querySelectorAll('section.room'));
    rooms.forEach(function (r) { r.hidden = false; });
    fitScale();
    const avail = main.clientHeight;
    const gap = 6;
    pages = [[]];
    let used = 0;
    rooms.forEach(function (r) {
      const h = r.offsetHeight;
      if (pages[pages.length - 1].length && used + h > avail) { pages.push([]); used = 0; }
      pages[pages.length - 1].push(r);
      used += h + gap;
    });
    if (page >= pages.length) page = 0;
    showPage();
  }
  function showPage() {
    pages.forEach(function (list, i) { list.forEach(function (r) { r.hidden = i !== page; }); });
    setData($('rooms'), 'pages', String(pages.length));
    setData($('rooms'), 'page', String(page));
    setText($('page-no'), pages.length > 1 ? fill(S.page, { n: page + 1, m: pages.length }) : '');
  }
  function nextPage() {
    if (pages.length < 2) return;
    page = (page + 1) % pages.length;
    showPage();
  }

  // ---- rendering ------------------------------------------------------------------
  // Alarms that colour a tile: raised or acknowledged (a cleared one waits only for
  // its acknowledgement, a shelved one is out of sight by an operator's decision).
  function colours(a) { return a.state !== 'cleared' && a.state !== 'shelved'; }
  function alarmLevel(device, point) {
    let level = null;
    alarms.forEach(function (a) {
      if (!colours(a) || a.device !== device || (point !== undefined && a.point !== point)) return;
      const l = a.state === 'pending' ? 'pending' : a.level;
      if (level === null || RANK[l] > RANK[level]) level = l;
    });
    return level;
  }
  // "Pending" (a value beyond a limit inside its on-delay): each reading carries
  // `pending` (the level it will raise at) while the on-delay runs (docs/WALL.md).
  function pendingReading(r) { return !!r && (r.pending === true || r.pending === 'normal' || r.pending === 'serious'); }

  function renderDevice(id) {
    const c = cards.get(id);
    if (!c) return;
    const reasons = [];
    let freshCount = 0;
    let newest = null;
    let pending = false;
    c.points.forEach(function (pe, name) {
      const r = readings.get(key(id, name));
      const fresh = !!r && r.quality === 'good' && r.value !== null;
      let level = alarmLevel(id, name);
      if (!level && pendingReading(r)) level = 'pending';
      if (level === 'pending') pending = true;
      const status = level || (fresh ? 'ok' : 'stale');
      if (fresh) freshCount += 1;
      setData(pe.row, 'status', status);
      setData(pe.row, 'fresh', String(fresh));
      setData(pe.row, 'quality', r ? r.quality : 'never');
      setData(pe.row, 'value', r && r.value !== null ? String(r.value) : '');
      // The tile's large value at most one decimal (a TV is read from afar); the
      // point's full resolution is in its tooltip.
      const isMain = pe.row.classList.contains('main');
      const def = isMain && pe.def.decimals > 1 ? Object.assign({}, pe.def, { decimals: 1 }) : pe.def;
      const f = fmtValue(def, r ? r.value : null);
      setText(pe.valueEl, f.text);
      pe.row.title = pe.def.label + ': ' + fmtValue(pe.def, r ? r.value : null).text;
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
    // A tile is grey only when none of its values is fresh (the device is silent);
    // single old values are struck through and named in the status line.
    let level = alarmLevel(id);
    if (!level && pending) level = 'pending';
    const status = level || (freshCount === 0 && c.points.size > 0 ? 'stale' : 'ok');
    setData(c.card, 'status', status);
    // Silent (no fresh value) is shown also when an alarm colours the tile.
    setData(c.card, 'stale', String(freshCount === 0 && c.points.size > 0));
    setData(c.card, 'partial', String(reasons.length > 0 && freshCount > 0));
    const parts = [];
    if (level) parts.push(level === 'pending' ? S.pending : S.level[level]);
    if (reasons.length) parts.push(reasons.join(', '));
    if (!parts.length) parts.push(S.status_ok);
    setText(c.statusEl, parts.join(' · '));
    setText(c.footEl, newest ? fill(S.updated, { age: fmtAgo(ageOf(newest)) }) : '');
  }

  function renderSystems() {
    systemEls.forEach(function (li, sys) {
      let st = 'ok';
      let n = 0;
      cards.forEach(function (c) {
        if (c.dev.system !== sys) return;
        n += 1;
        const s = c.card.dataset.status;
        if (RANK[s] > RANK[st]) st = s;
      });
      setData(li, 'status', st);
      li.title = n + '';
    });
  }

  // Alarms are grouped so one cause is one row: by the event's `cause` when the
  // gateway sends one (the link alarm whose `id` is that cause heads the group: one
  // banner, expandable to its children), all lost-communication alarms together,
  // else by device.
  let heads = new Set();
  const expanded = new Set();
  function groupKey(a) {
    if (a.cause) return 'cause:' + a.cause;
    if (heads.has(a.id)) return 'cause:' + a.id;
    if (a.rule === 'comm_lost') return 'comm_lost';
    return 'device:' + a.device;
  }
  function stateRank(a) { return a.state === 'raised' ? 2 : a.state === 'acked' ? 1 : 0; }
  const MAX_GROUPS = 4;
  let alarmSig = null;
  const alarmWhen = []; // [span, since]
  const seenSerious = new Set();
  let firstAlarms = true;
  function renderAlarms() {
    const shown = alarms.filter(function (a) { return a.state !== 'shelved'; });
    const sorted = shown.slice().sort(function (a, b) {
      return (RANK[b.level] - RANK[a.level]) || (stateRank(b) - stateRank(a)) ||
        (Date.parse(b.since) - Date.parse(a.since));
    });
    // A new serious alarm (one this page has not seen raised) sounds the alert.
    let fresh = false;
    sorted.forEach(function (a) {
      const id = a.key + '#' + (a.no || a.id);
      if (a.level === 'serious' && a.state === 'raised' && !seenSerious.has(id)) {
        seenSerious.add(id);
        if (!firstAlarms) fresh = true;
      }
    });
    if (firstAlarms && lastDataAt) firstAlarms = false;
    if (fresh) beep();
    const sig = JSON.stringify(sorted);
    if (sig === alarmSig) {
      alarmWhen.forEach(function (w) { setText(w[0], whenText(w[1])); });
      return;
    }
    alarmSig = sig;
    alarmWhen.length = 0;
    heads = new Set();
    sorted.forEach(function (a) { if (a.cause) heads.add(a.cause); });
    const groups = [];
    const byKey = new Map();
    sorted.forEach(function (a) {
      const k = groupKey(a);
      let g = byKey.get(k);
      if (!g) { g = { key: k, list: [] }; byKey.set(k, g); groups.push(g); }
      g.list.push(a);
    });
    // The root cause's own alarm first in its group: the banner is the link alarm.
    groups.forEach(function (g) {
      const i = g.list.findIndex(function (a) { return heads.has(a.id); });
      if (i > 0) g.list.unshift(g.list.splice(i, 1)[0]);
      g.head = i >= 0;
    });
    setData($('alarms'), 'count', String(sorted.length));
    setData($('alarms'), 'groups', String(groups.length));
    const visible = groups.slice(0, MAX_GROUPS);
    setData($('alarm-list'), 'n', String(visible.length));
    setText($('alarms-more'), groups.length > MAX_GROUPS ?
      fill(S.more_alarms, { n: groups.length - MAX_GROUPS }) : '');
    $('alarm-list').replaceChildren.apply($('alarm-list'), visible.map(function (g) {
      const a = g.list[0];
      const c = cards.get(a.device);
      const pe = c && c.points.get(a.point);
      const li = el('li', 'alarm');
      li.dataset.key = a.key;
      li.dataset.level = a.level;
      li.dataset.state = a.state || 'raised';
      li.dataset.device = a.device;
      li.dataset.point = a.point;
      li.dataset.group = g.key;
      li.dataset.count = String(g.list.length);
      if (g.head) {
        // One banner per root cause; a touch (or Enter) shows its children.
        li.classList.add('banner');
        li.dataset.expanded = String(expanded.has(g.key));
        li.tabIndex = 0;
        const toggle = function () {
          if (expanded.has(g.key)) expanded.delete(g.key); else expanded.add(g.key);
          alarmSig = null;
          renderAlarms();
        };
        li.addEventListener('click', toggle);
        li.addEventListener('keydown', function (e) { if (e.key === 'Enter') toggle(); });
      }
      li.append(el('span', 'level', (a.no ? '#' + a.no + ' ' : '') + (S.level[a.level] || a.level) +
        (a.state && a.state !== 'raised' && S.state[a.state] ? ' · ' + S.state[a.state] : '')));
      // The row's level label already says "Serious incident": do not repeat it at
      // the start of the message, where the width is worth most.
      let msg = a.message || '';
      const prefix = (S.level[a.level] || '') + ': ';
      if (prefix.length > 2 && msg.indexOf(prefix) === 0) msg = msg.slice(prefix.length);
      if (g.list.length > 1) msg = fill(S.group_more, { msg: msg, n: g.list.length - 1 });
      li.append(el('span', 'msg', msg));
      const when = el('span', 'when', whenText(a.since));
      alarmWhen.push([when, a.since]);
      li.append(when);
      const names = g.list.map(function (x) {
        const cx = cards.get(x.device);
        return cx ? (cx.dev.label || cx.dev.name) : x.device;
      }).filter(function (v, i, arr) { return arr.indexOf(v) === i; });
      let who = c ? c.dev.name + (c.dev.label ? ' [' + c.dev.label + ']' : '') : a.device;
      if (a.point) who += ' — ' + (pe ? pe.def.label : a.point);
      if (names.length > 1) who = names.join(', ');
      li.append(el('span', 'who', who));
      // A banner's value is the number of devices behind the link: its text says it.
      if (a.value !== null && a.value !== undefined && !g.head) {
        const v = fmtValue(pe && pe.def, a.value);
        const vt = (v.text + (v.unit ? ' ' + v.unit : ''));
        const tt = a.threshold === null || a.threshold === undefined ? '—' :
          fmtValue(pe && pe.def, a.threshold).text + (v.unit ? ' ' + v.unit : '');
        li.append(el('span', 'detail', fill(S.value_threshold, { v: vt, t: tt })));
      }
      if (g.head && expanded.has(g.key)) {
        const kids = el('ol', 'children');
        g.list.slice(1).forEach(function (x) {
          // The child's own text, without the level word the banner already says.
          let m = x.message || '';
          const p = (S.level[x.level] || '') + ' ';
          if (p.length > 1 && m.indexOf(p) === 0) m = m.slice(p.length);
          const k = el('li', 'child', m);
          k.dataset.key = x.key;
          k.dataset.level = x.level;
          kids.append(k);
        });
        li.append(kids);
      }
      return li;
    }));
    // The alarm band's height changed: the rooms below may need other pages.
    paginate();
  }
  function whenText(since) {
    return fill(S.since, { t: fmtTime(since) }) + ' (' + fmtDuration(ageOf(since)) + ')';
  }

  // ---- sound ------------------------------------------------------------------------
  // A short two-tone beep made with WebAudio (no sound file), on a new serious alarm,
  // when switched on (the button; remembered by this browser). A kiosk browser needs
  // autoplay allowed (Chromium: --autoplay-policy=no-user-gesture-required).
  let soundOn = localStorage.getItem('wall-sound') !== 'off';
  let audio = null;
  function renderSound() {
    setData($('sound'), 'on', String(soundOn));
    setText($('sound'), soundOn ? S.sound_on : S.sound_off);
  }
  function beep() {
    stats.beeps += 1;
    if (!soundOn) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === 'suspended') {
        const p = audio.resume();
        if (p && p.catch) p.catch(function () { /* not allowed to play yet */ });
      }
      [0, 0.35, 0.7].forEach(function (t, i) {
        const o = audio.createOscillator();
        const g = audio.createGain();
        o.frequency.value = i % 2 ? 660 : 880;
        g.gain.setValueAtTime(0.0001, audio.currentTime + t);
        g.gain.exponentialRampToValueAtTime(0.4, audio.currentTime + t + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + t + 0.3);
        o.connect(g).connect(audio.destination);
        o.start(audio.currentTime + t);
        o.stop(audio.currentTime + t + 0.32);
      });
    } catch (e) { /* no audio device: the screen still shows the alarm */ }
  }

  // ---- connection -----------------------------------------------------------------
  // The stream dropping (gateway stopped, network cut) shows the unreachable overlay
  // after SITE.unreachable_after_s; no data for SITE.lost_after_s on an open stream
  // (a silent half-open link) does too.
  let downSince = 0;
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
    const down = !streamOpen && downSince && (Date.now() - downSince) / 1000 >= SITE.unreachable_after_s;
    const unreachable = st === 'lost' || st === 'never' || !!down;
    setData(document.body, 'unreachable', String(unreachable));
    const age = lastDataAt ? fmtAgo((Date.now() - lastDataAt) / 1000) : '';
    setText($('conn-text'), fill(S.conn[st], { age: age }));
    setText($('unreachable-text'), lastDataAt ? fill(S.unreachable_text, { age: age }) : S.conn.never);
  }

  function renderClock() {
    const now = new Date(serverNow());
    setText($('clock-time'), now.toLocaleTimeString(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }));
    setText($('clock-date'), now.toLocaleDateString(LOCALE, { weekday: 'long', day: '2-digit', month: '2-digit', year: 'numeric' }));
  }

  function renderAll() {
    cards.forEach(function (_, id) { renderDevice(id); });
    renderSystems();
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
    es.onopen = function () { streamOpen = true; downSince = 0; renderConn(); };
    es.onerror = function () {
      if (streamOpen || !downSince) downSince = Date.now();
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
      downSince = 0;
      renderAll();
    });
    es.addEventListener('device', function (e) {
      const d = JSON.parse(e.data);
      stats.device += 1;
      applyReadings(d.readings);
      gotData(d.generated_at);
      streamOpen = true;
      renderDevice(d.device);
      renderSystems();
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
  renderSound();
  $('sound').addEventListener('click', function () {
    soundOn = !soundOn;
    localStorage.setItem('wall-sound', soundOn ? 'on' : 'off');
    renderSound();
    if (soundOn) beep();
  });
  renderAll();
  paginate();
  window.addEventListener('resize', paginate);
  setInterval(nextPage, SITE.page_s * 1000);
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
  // The unreachable overlay must not wait for the next whole second.
  setInterval(renderConn, 250);
})();
