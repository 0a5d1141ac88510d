// docaxis clerks' page. Plain JavaScript, no build step: it talks to the
// /v1 API with the agency's token and follows /v1/events for live badges.
// Everything from the bus is put on the page with textContent, never as HTML.
'use strict';

(function () {
  const cfg = JSON.parse(document.getElementById('config').textContent);
  const KEY = 'docaxis.token';
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  let token = sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || '';
  let me = null;
  let names = {}; // agency code -> name
  let events = null; // AbortController of the event stream
  const tracking = new Map(); // "<envelope>|<recipient>" -> latest tracking
  let view = { name: '', id: '', box: '' };
  let refreshTimer = 0;

  // ---- helpers --------------------------------------------------------

  // h builds an element: h('a', {href: '#', class: 'x', dataset: {...}}, 'text', child...)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const dateFmt = new Intl.DateTimeFormat('vi-VN', {
    timeZone: 'Asia/Ho_Chi_Minh', day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  function when(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) || d.getFullYear() < 2000 ? '' : dateFmt.format(d);
  }
  function day(s) { // YYYY-MM-DD -> DD/MM/YYYY
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
    return m ? m[3] + '/' + m[2] + '/' + m[1] : (s || '');
  }
  function size(n) {
    const units = ['B', 'KB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toLocaleString('vi-VN', { maximumFractionDigits: 1 }) : n) + ' ' + units[i];
  }
  function agencyName(code) { return names[code] ? names[code] + ' (' + code + ')' : code; }
  function stateLabel(st) { return (cfg.states[st] && cfg.states[st].label) || st; }
  function codeNo(doc) {
    if (!doc) return '';
    return [doc.code_number, doc.code_notation].filter(Boolean).join('/');
  }

  let toastTimer = 0;
  function toast(msg) {
    const t = $('#toast');
    t.textContent = msg;
    t.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove('show'), 4000);
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Authorization: 'Bearer ' + token }, opts.headers || {});
    const res = await fetch(path, Object.assign({}, opts, { headers, cache: 'no-store' }));
    if (!res.ok) {
      let body = {};
      try { body = await res.json(); } catch (e) { /* not JSON */ }
      if (res.status === 401) signOut(body.error);
      throw new ApiError(res.status, body.code, body.error || res.statusText);
    }
    return res.json();
  }

  // ---- badges and live updates ----------------------------------------

  function badge(envelope, recipient, state, overdue) {
    return h('span', {
      class: 'badge s-' + state, dataset: { envelope, recipient, state }, title: cfg.states[state] && cfg.states[state].code ? 'Mã trạng thái ' + cfg.states[state].code : null,
    }, stateLabel(state), overdue ? h('span', { class: 'sr-only' }, ' (quá hạn)') : null);
  }

  // shownState is the newer of a listed state and one a live event brought:
  // a list fetched while an event was on its way must not put an older
  // state back on the badge.
  function shownState(envelope, recipient, listed, listedAt) {
    const live = tracking.get(envelope + '|' + recipient);
    if (live && (!listedAt || Date.parse(live.updated) >= Date.parse(listedAt))) return live.state;
    return listed;
  }

  function setBadge(el, state) {
    if (el.dataset.state === state) return;
    el.dataset.state = state;
    el.className = 'badge s-' + state + ' changed';
    el.textContent = stateLabel(state);
  }

  function onTracking(t) {
    if (!me) return;
    const key = t.envelope + '|' + t.agency;
    const prev = tracking.get(key);
    if (prev && prev.revision > t.revision) return;
    tracking.set(key, t);
    const badges = $$('.badge[data-envelope="' + CSS.escape(t.envelope) + '"][data-recipient="' + CSS.escape(t.agency) + '"]');
    badges.forEach((b) => setBadge(b, t.state));
    $$('[data-ack="' + CSS.escape(t.envelope) + '"]').forEach((b) => { if (t.state !== 'sent' && t.agency === me.code) b.remove(); });
    if (view.name === 'doc' && view.id === t.envelope) {
      renderTimeline(t);
    } else if (view.name === 'list' && !badges.length && (!prev || prev.state !== t.state)) {
      const mine = view.box === 'sent' ? t.sender === me.code : t.agency === me.code;
      if (mine) scheduleRefresh(); // a document this list does not show yet
    }
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { if (view.name === 'list') loadList(false); }, 400);
  }

  function setLive(on) {
    const el = $('#live');
    el.dataset.live = on ? 'on' : 'off';
    el.textContent = on ? '● Trực tiếp' : '○ Mất kết nối, đang thử lại…';
  }

  // The event stream is read with fetch, not EventSource, so the token
  // travels in the Authorization header and never in a URL.
  async function follow() {
    if (events) events.abort();
    const ctl = new AbortController();
    events = ctl;
    let delay = 1000;
    while (!ctl.signal.aborted) {
      try {
        const res = await fetch('/v1/events', {
          headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' }, signal: ctl.signal, cache: 'no-store',
        });
        if (res.status === 401) { signOut(); return; }
        if (!res.ok) throw new Error('HTTP ' + res.status);
        setLive(true);
        delay = 1000;
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            dispatch(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      setLive(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  function dispatch(block) {
    let ev = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line[0] === ':') continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let v = i < 0 ? '' : line.slice(i + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (field === 'event') ev = v;
      else if (field === 'data') data.push(v);
    }
    if (ev === 'tracking' && data.length) {
      try { onTracking(JSON.parse(data.join('\n'))); } catch (e) { /* ignore a bad event */ }
    }
  }

  // ---- sign in / out ----------------------------------------------------

  async function signIn(t, remember) {
    token = t;
    const who = await api('/v1/me');
    me = who;
    sessionStorage.setItem(KEY, t);
    if (remember) localStorage.setItem(KEY, t);
    const list = await api('/v1/agencies');
    names = {};
    for (const a of list.agencies) names[a.code] = a.name;
    $('#who-name').textContent = (who.name || who.code) + ' · ' + who.code;
    $('#nav').hidden = false;
    $('#who').hidden = false;
    follow();
  }

  function signOut(reason) {
    token = '';
    me = null;
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
    if (events) events.abort();
    events = null;
    tracking.clear();
    $('#toast').classList.remove('show');
    $('#nav').hidden = true;
    $('#who').hidden = true;
    $('#signin-error').textContent = reason ? 'Không đăng nhập được: ' + reason : '';
    if (location.hash !== '#/signin') location.hash = '#/signin';
    else route();
  }

  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('#signin-token').value.trim();
    $('#signin-error').textContent = '';
    try {
      await signIn(t, $('#signin-remember').checked);
      $('#signin-token').value = '';
      location.hash = '#/out';
    } catch (err) {
      token = '';
      $('#signin-error').textContent = 'Không đăng nhập được: ' + err.message;
    }
  });
  $('#signout').addEventListener('click', () => signOut());

  // ---- routing ----------------------------------------------------------

  function show(id) {
    for (const s of $$('main > section')) s.hidden = s.id !== id;
    for (const a of $$('#nav a')) {
      if (a.dataset.nav === view.nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function focusHeading(section) {
    const h1 = $('#' + section + ' h1');
    if (h1) h1.focus({ preventScroll: false });
  }

  async function route() {
    const hash = location.hash.replace(/^#/, '') || '/out';
    const [path, query] = hash.split('?');
    const params = new URLSearchParams(query || '');
    if (!me) {
      view = { name: 'signin' };
      show('view-signin');
      focusHeading('view-signin');
      return;
    }
    const parts = path.split('/').filter(Boolean);
    if (parts[0] === 'doc' && parts[1]) {
      view = { name: 'doc', id: parts[1], nav: '' };
      show('view-doc');
      await loadDoc(parts[1]);
    } else if (parts[0] === 'send') {
      view = { name: 'send', nav: 'send' };
      show('view-send');
      renderSendForm();
      focusHeading('view-send');
    } else {
      const box = parts[0] === 'in' ? 'received' : 'sent';
      view = { name: 'list', box, nav: box === 'sent' ? 'out' : 'in', params };
      show('view-list');
      $('#list-title').textContent = box === 'sent' ? 'Văn bản đi' : 'Văn bản đến';
      $('#search-q').value = params.get('q') || '';
      $('#search-from').value = params.get('from') || '';
      $('#search-to').value = params.get('to') || '';
      $('#search-overdue').checked = params.get('overdue') === 'true';
      focusHeading('view-list');
      await loadList(true);
    }
  }
  window.addEventListener('hashchange', route);

  // ---- lists ------------------------------------------------------------

  $('#search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, id] of [['q', '#search-q'], ['from', '#search-from'], ['to', '#search-to']]) {
      const v = $(id).value.trim();
      if (v) p.set(k, v);
    }
    if ($('#search-overdue').checked) p.set('overdue', 'true');
    location.hash = '#/' + view.nav + (p.toString() ? '?' + p : '');
  });
  $('#search-reset').addEventListener('click', () => { setTimeout(() => { location.hash = '#/' + view.nav; }, 0); });

  // The list comes a page at a time (newest first); "Xem thêm" fetches
  // the next page with the cursor the server gave.
  let listNext = '';

  function listParams() {
    const p = new URLSearchParams(view.params);
    p.set('box', view.box);
    return p;
  }

  function isFiltered(p) {
    return !!(p.get('q') || p.get('from') || p.get('to') || p.get('overdue'));
  }

  function showCount(res, p) {
    const shown = $$('#list .doc').length;
    $('#list-count').textContent = isFiltered(p)
      ? shown + ' văn bản khớp' + (res.more ? ', có thể còn nữa' : '')
      : res.total + ' văn bản' + (res.total > shown ? ', hiện ' + shown : '');
  }

  function showMore(res) {
    listNext = res.more ? res.next : '';
    $('#list-more').hidden = !res.more;
  }

  async function loadList(announce) {
    const p = listParams();
    const list = $('#list');
    const box = view.box;
    // A refresh keeps the pages already shown.
    const shown = announce ? 0 : $$('#list .doc').length;
    if (shown > 200) p.set('limit', String(Math.min(shown, 1000)));
    try {
      const res = await api('/v1/envelopes?' + p);
      if (view.name !== 'list' || view.box !== box) return;
      list.replaceChildren(...res.documents.map((d) => (box === 'sent' ? outgoing(d) : incoming(d))));
      if (!res.documents.length && !res.more) {
        list.replaceChildren(h('p', { class: 'empty' }, isFiltered(p)
          ? 'Không có văn bản nào khớp điều kiện tìm.' : (box === 'sent' ? 'Chưa gửi văn bản nào.' : 'Chưa nhận văn bản nào.')));
      }
      showMore(res);
      if (announce || res.total !== Number(list.dataset.total)) showCount(res, p);
      list.dataset.total = res.total;
    } catch (err) {
      list.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'Không tải được danh sách: ' + err.message));
    }
  }

  $('#list-more').addEventListener('click', async () => {
    const p = listParams();
    const box = view.box;
    const more = $('#list-more');
    p.set('before', listNext);
    more.disabled = true;
    try {
      const res = await api('/v1/envelopes?' + p);
      if (view.name !== 'list' || view.box !== box) return;
      $('#list').append(...res.documents.map((d) => (box === 'sent' ? outgoing(d) : incoming(d))));
      showMore(res);
      showCount(res, p);
    } catch (err) {
      $('#list').append(h('p', { class: 'error', role: 'alert' }, 'Không tải thêm được: ' + err.message));
    } finally {
      more.disabled = false;
    }
  });

  function docMeta(d) {
    const bits = [];
    if (codeNo(d.document)) bits.push(h('span', null, 'Số/Ký hiệu: ', h('strong', null, codeNo(d.document))));
    bits.push(h('span', null, 'Ngày gửi: ', when(d.created)));
    if (d.due_date) {
      bits.push(h('span', { class: d.overdue ? 'due overdue-text' : 'due' }, 'Hạn xử lý: ', day(d.due_date), d.overdue ? ' — Quá hạn' : ''));
    }
    return h('p', { class: 'meta' }, bits);
  }

  function outgoing(d) {
    return h('article', { class: 'doc' + (d.overdue ? ' overdue' : ''), dataset: { id: d.id } },
      h('h2', null, h('a', { href: '#/doc/' + d.id }, d.subject)),
      docMeta(d),
      h('ul', { class: 'recipients-state', 'aria-label': 'Trạng thái theo nơi nhận' },
        d.recipients.map((r) => h('li', { class: r.overdue ? 'overdue' : null },
          h('span', { class: 'agency' }, agencyName(r.agency)), ' ', badge(d.id, r.agency, shownState(d.id, r.agency, r.state, r.updated), r.overdue)))));
  }

  function verification(d) {
    return d.verified
      ? h('p', { class: 'verify ok' }, '✓ Chữ ký số hợp lệ')
      : h('p', { class: 'verify bad' }, '✗ Không xác thực được: ', d.verification_error || 'không rõ lý do');
  }

  function attachments(id, list) {
    if (!list || !list.length) return null;
    return h('ul', { class: 'files', 'aria-label': 'Tệp đính kèm' }, list.map((a) => h('li', null,
      h('button', { type: 'button', class: 'link', onclick: () => download(a) }, '⬇ ', a.name),
      h('span', { class: 'muted' }, ' · ', size(a.size)))));
  }

  function incoming(d) {
    const own = d.recipients.find((r) => r.agency === me.code) || d.recipients[0] || { state: 'sent' };
    return h('article', { class: 'doc' + (d.overdue ? ' overdue' : ''), dataset: { id: d.id } },
      h('h2', null, h('a', { href: '#/doc/' + d.id }, d.subject)),
      h('p', { class: 'from' }, 'Nơi gửi: ', agencyName(d.sender), ' ', badge(d.id, me.code, shownState(d.id, me.code, own.state, own.updated), own.overdue)),
      docMeta(d),
      verification(d),
      attachments(d.id, d.attachments),
      own.state === 'sent' && d.verified ? h('p', null, ackButton(d.id)) : null);
  }

  function ackButton(id) {
    return h('button', { type: 'button', class: 'primary', dataset: { ack: id }, onclick: (e) => acknowledge(id, e.currentTarget) }, 'Xác nhận đã nhận');
  }

  async function acknowledge(id, btn) {
    btn.disabled = true;
    try {
      await api('/v1/inbox/' + encodeURIComponent(id) + '/ack', { method: 'POST' });
      toast('Đã xác nhận nhận văn bản.');
      if (view.name === 'doc') await loadDoc(id);
    } catch (err) {
      btn.disabled = false;
      toast('Không xác nhận được: ' + err.message);
    }
  }

  // Downloads go through fetch (the token is a header, not a cookie); the
  // server checks the SHA-256 while it streams and cuts the connection on
  // a mismatch, which fails the fetch here.
  async function download(a) {
    try {
      const res = await fetch(a.url, { headers: { Authorization: 'Bearer ' + token } });
      if (!res.ok) {
        let body = {};
        try { body = await res.json(); } catch (e) { /* not JSON */ }
        throw new Error(body.error || res.statusText);
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: a.name });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      toast('Không tải được ' + a.name + ': ' + err.message);
    }
  }

  // ---- one document -------------------------------------------------------

  async function loadDoc(id) {
    const root = $('#doc');
    root.replaceChildren(h('p', { class: 'muted' }, 'Đang tải…'));
    let env, st;
    try {
      [env, st] = await Promise.all([
        api('/v1/envelopes/' + encodeURIComponent(id)),
        api('/v1/envelopes/' + encodeURIComponent(id) + '/status'),
      ]);
    } catch (err) {
      root.replaceChildren(h('h1', { tabindex: '-1' }, 'Không mở được văn bản'), h('p', { class: 'error', role: 'alert' }, err.message));
      $('h1', root).focus();
      return;
    }
    if (view.name !== 'doc' || view.id !== id) return;
    view.role = env.role;
    $('#doc-back').href = env.role === 'sender' ? '#/out' : '#/in';
    for (const t of st.recipients) {
      const key = t.envelope + '|' + t.agency;
      const prev = tracking.get(key);
      if (!prev || prev.revision <= t.revision) tracking.set(key, t);
    }
    const overdue = st.recipients.some((r) => r.overdue);
    const dl = h('dl', { class: 'facts' });
    const fact = (k, ...v) => { if (v.filter(Boolean).length) dl.append(h('dt', null, k), h('dd', null, v)); };
    fact('Nơi gửi', agencyName(env.from));
    fact('Nơi nhận', env.to.map(agencyName).join('; '));
    fact('Số/Ký hiệu', codeNo(env.document));
    fact('Loại văn bản', env.document && (env.document.type_name || env.document.type));
    fact('Ngày gửi', when(env.created));
    if (env.document && env.document.due_date) {
      fact('Hạn xử lý', day(env.document.due_date), overdue ? h('strong', { class: 'overdue-text' }, ' — Quá hạn') : '');
    }
    fact('Nội dung', env.body);
    fact('Mã văn bản', h('code', null, env.id));
    fact('Người ký số', env.signer);
    root.replaceChildren(
      h('article', { class: 'card' + (overdue ? ' overdue' : '') },
        h('h1', { tabindex: '-1' }, env.subject),
        verification(env),
        dl,
        env.attachments.length ? h('h2', null, 'Tệp đính kèm') : null,
        attachments(env.id, env.attachments)),
      h('h2', null, env.role === 'sender' ? 'Trạng thái theo nơi nhận' : 'Trạng thái xử lý'),
      h('div', { id: 'timelines' }, st.recipients.map((t) => timeline(t, env.role))));
    $('h1', root).focus();
  }

  function timeline(t, role) {
    const box = h('section', { class: 'timeline card', dataset: { recipient: t.agency } },
      h('h3', null, agencyName(t.agency), ' ', badge(t.envelope, t.agency, t.state, t.overdue)),
      t.overdue ? h('p', { class: 'overdue-text' }, 'Quá hạn xử lý') : null,
      h('ol', null, (t.history || []).map((ev) => h('li', { dataset: { state: ev.state } },
        h('span', { class: 'when' }, when(ev.at)), ' ',
        h('span', { class: 'what' }, stateLabel(ev.state), cfg.states[ev.state] && cfg.states[ev.state].code ? ' (' + cfg.states[ev.state].code + ')' : ''),
        ev.by ? h('span', { class: 'by muted' }, ' — ', agencyName(ev.by)) : null,
        ev.note ? h('div', { class: 'note' }, '“', ev.note, '”') : null,
        ev.reason ? h('div', { class: 'note' }, 'Lý do: ', ev.reason) : null))),
      (t.refused || []).length ? h('p', { class: 'muted' }, 'Trạng thái bị từ chối: ',
        t.refused.map((ev) => stateLabel(ev.state) + ' (' + ev.reason + ')').join('; ')) : null);
    if (role === 'recipient' && t.agency === me.code) box.append(actions(t));
    return box;
  }

  function renderTimeline(t) {
    const old = $('#timelines .timeline[data-recipient="' + CSS.escape(t.agency) + '"]');
    if (!old) return;
    const hadFocus = old.contains(document.activeElement);
    const fresh = timeline(t, view.role);
    old.replaceWith(fresh);
    $$('.badge', fresh).forEach((b) => b.classList.add('changed'));
    if (hadFocus) { const b = $('button, textarea', fresh); if (b) b.focus(); }
  }

  function actions(t) {
    const form = h('form', { class: 'actions-form' });
    if (t.state === 'sent') {
      form.append(ackButton(t.envelope));
      return form;
    }
    const next = cfg.next[t.state] || [];
    if (!next.length) return form;
    const noteId = 'note-' + t.envelope;
    form.append(h('label', { for: noteId }, 'Ghi chú (không bắt buộc)'), h('textarea', { id: noteId, rows: '2' }));
    const row = h('div', { class: 'actions' });
    for (const st of next) {
      row.append(h('button', {
        type: 'button', class: st === 'rejected' || st === 'recall-refused' ? 'danger' : 'primary', dataset: { mark: st },
        onclick: (e) => mark(t.envelope, st, $('#' + CSS.escape(noteId)).value, e.currentTarget),
      }, stateLabel(st)));
    }
    form.append(row);
    return form;
  }

  async function mark(id, state, note, btn) {
    btn.disabled = true;
    try {
      await api('/v1/envelopes/' + encodeURIComponent(id) + '/status', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ state, note }),
      });
      toast('Đã cập nhật: ' + stateLabel(state));
    } catch (err) {
      btn.disabled = false;
      toast('Không cập nhật được: ' + err.message);
    }
  }

  // ---- send ---------------------------------------------------------------

  function renderSendForm() {
    const box = $('#send-to');
    if (box.dataset.for === me.code) return;
    box.dataset.for = me.code;
    box.replaceChildren(...Object.keys(names).filter((c) => c !== me.code).sort().map((code) => {
      const id = 'to-' + code.replace(/[^A-Za-z0-9]/g, '-');
      return h('label', { class: 'check', for: id, dataset: { search: (names[code] + ' ' + code).toLowerCase() } },
        h('input', { type: 'checkbox', id, value: code, name: 'to' }), ' ', names[code] || code, ' ', h('span', { class: 'muted' }, code));
    }));
  }

  $('#send-filter').addEventListener('input', (e) => {
    const q = e.target.value.trim().toLowerCase();
    for (const l of $$('#send-to label')) l.hidden = q && !l.dataset.search.includes(q);
  });

  $('#send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const err = $('#send-error');
    err.textContent = '';
    const to = $$('#send-to input:checked').map((i) => i.value);
    if (!to.length) {
      err.textContent = 'Chọn ít nhất một nơi nhận.';
      $('#send-filter').focus();
      return;
    }
    const meta = { to, subject: $('#send-subject').value.trim() };
    const body = $('#send-body').value.trim();
    if (body) meta.body = body;
    const doc = {};
    if ($('#send-number').value.trim()) doc.code_number = $('#send-number').value.trim();
    if ($('#send-notation').value.trim()) doc.code_notation = $('#send-notation').value.trim();
    if ($('#send-due').value) doc.due_date = $('#send-due').value;
    if (Object.keys(doc).length) meta.document = doc;
    const fd = new FormData();
    fd.append('meta', new Blob([JSON.stringify(meta)], { type: 'application/json' }), 'meta.json');
    for (const f of $('#send-files').files) fd.append('file', f, f.name);

    const submit = $('#send-submit');
    const bar = $('#send-bar');
    const pct = $('#send-pct');
    $('#send-progress').hidden = false;
    bar.value = 0;
    pct.textContent = 'Đang tải lên…';
    submit.disabled = true;
    // XMLHttpRequest, because fetch reports no upload progress.
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/envelopes');
    xhr.setRequestHeader('Authorization', 'Bearer ' + token);
    xhr.upload.addEventListener('progress', (ev) => {
      if (!ev.lengthComputable) return;
      const p = Math.round((ev.loaded / ev.total) * 100);
      bar.value = p;
      pct.textContent = 'Đã tải lên ' + p + '% (' + size(ev.loaded) + ' / ' + size(ev.total) + ')';
    });
    xhr.addEventListener('load', () => {
      submit.disabled = false;
      let res = {};
      try { res = JSON.parse(xhr.responseText); } catch (e2) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        pct.textContent = 'Đã gửi.';
        $('#send-form').reset();
        $$('#send-to label').forEach((l) => { l.hidden = false; });
        toast('Đã ký số và gửi văn bản.');
        location.hash = '#/doc/' + res.id;
      } else {
        if (xhr.status === 401) { signOut(res.error); return; }
        $('#send-progress').hidden = true;
        err.textContent = 'Không gửi được: ' + (res.error || xhr.statusText || ('HTTP ' + xhr.status));
      }
    });
    xhr.addEventListener('error', () => {
      submit.disabled = false;
      $('#send-progress').hidden = true;
      err.textContent = 'Không gửi được: mất kết nối tới máy chủ.';
    });
    xhr.send(fd);
  });

  // ---- start --------------------------------------------------------------

  (async () => {
    if (token) {
      try { await signIn(token, false); } catch (err) { signOut(err.message); return; }
    }
    route();
  })();
})();
