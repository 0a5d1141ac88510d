// docaxis operator's page: plain JavaScript on /v1/operator. Everything
// from the bus is shown with textContent, never as HTML.
'use strict';
(() => {
  const T = {
    vi: {
      skip: 'Bỏ qua, đến nội dung chính', brand: 'Quản trị trục liên thông',
      'nav.directory': 'Danh bạ', 'nav.systems': 'Hệ thống', 'nav.quarantine': 'Cách ly', 'nav.federation': 'Liên kết', 'nav.alerts': 'Cảnh báo', 'nav.stats': 'Thống kê',
      signout: 'Đăng xuất', 'signin.title': 'Đăng nhập quản trị', 'signin.help': 'Nhập mã truy cập của quản trị viên, tạo bằng lệnh docaxis operator token TÊN.',
      'signin.token': 'Mã truy cập quản trị', 'signin.remember': 'Ghi nhớ trên máy này', 'signin.submit': 'Đăng nhập',
      'dir.title': 'Danh bạ cơ quan', 'dir.search': 'Tìm theo mã, tên cơ quan (không dấu cũng được)', 'dir.ph': 'ví dụ: so noi vu nghe an',
      search: 'Tìm', clear: 'Xóa', more: 'Xem thêm', 'dir.total': '{n} cơ quan trong danh bạ', 'dir.found': 'Kết quả tìm kiếm', 'dir.nothing': 'Không tìm thấy cơ quan nào.',
      'd.code': 'Mã định danh', 'd.name': 'Tên', 'd.parent': 'Cơ quan cấp trên', 'd.system': 'Hệ thống', 'd.state': 'Trạng thái', 'd.email': 'Thư điện tử', 'd.old': 'Mã cũ',
      'd.added': 'Ngày thêm', 'd.children': 'Đơn vị trực thuộc', 'd.cert': 'Chứng thư hết hạn', 'd.bus': 'Trục',
      'st.active': 'hoạt động', 'st.suspended': 'tạm dừng', 'st.deleted': 'đã xóa',
      'sys.title': 'Hệ thống quản lý văn bản và cơ quan sử dụng', 'sys.id': 'Mã hệ thống', 'sys.name': 'Tên', 'sys.agencies': 'Số cơ quan', 'sys.cert': 'Chứng thư hết hạn',
      'sys.of': 'Cơ quan dùng hệ thống {id}', 'sys.none': 'Chưa có hệ thống nào.',
      'q.title': 'Thông điệp bị cách ly', 'q.time': 'Thời điểm', 'q.agency': 'Cơ quan', 'q.reason': 'Lý do', 'q.tries': 'Số lần', 'q.empty': 'Không có thông điệp nào bị cách ly.',
      'q.retry': 'Gửi lại', 'q.retried': 'Đã gửi lại thông điệp #{seq}.', 'q.message': 'Thông điệp', 'q.from': 'Nơi gửi', 'q.to': 'Nơi nhận', 'q.subject': 'Trích yếu',
      'q.verified': 'Kiểm tra chữ ký', 'q.ok': 'hợp lệ', 'q.bad': 'không hợp lệ', 'q.envelope': 'Mã văn bản', 'q.size': 'Kích thước',
      'audit.title': 'Nhật ký thao tác quản trị', 'audit.none': 'Chưa có thao tác nào.', 'audit.retry': '{op} gửi lại thông điệp cách ly #{target} ({agency})',
      'fed.title': 'Liên kết liên thông', 'fed.peer': 'Trục bên kia', 'fed.state': 'Trạng thái', 'fed.backlog': 'Đang chờ', 'fed.last': 'Lần nhận gần nhất', 'fed.none': 'Trục này không liên kết với trục nào.',
      'fed.bus': 'Trục: {bus}', 'fed.up': 'đang kết nối', 'fed.down': 'mất kết nối', 'fed.unknown': 'không rõ',
      'alerts.title': 'Cảnh báo', 'alerts.none': 'Không có cảnh báo.', 'alerts.since': 'từ {t}', 'alerts.resolved': 'đã hết lúc {t}',
      'sev.warning': 'cảnh báo', 'sev.critical': 'nghiêm trọng',
      'rule.not_delivered': 'Văn bản chưa đến', 'rule.not_answered': 'Văn bản chưa được tiếp nhận', 'rule.cert_expiring': 'Chứng thư sắp hết hạn',
      'rule.quarantine_growing': 'Cách ly tăng', 'rule.link_down': 'Mất liên kết', 'rule.disk_filling': 'Ổ đĩa sắp đầy',
      'stats.title': 'Thống kê văn bản', 'stats.from': 'Từ ngày', 'stats.to': 'Đến ngày', 'stats.period': 'Theo', 'stats.day': 'ngày', 'stats.month': 'tháng',
      'stats.by': 'Nhóm theo', 'stats.all': 'toàn trục', 'stats.agency': 'cơ quan', 'stats.province': 'tỉnh, bộ', 'stats.system': 'hệ thống', 'stats.show': 'Xem',
      'stats.periodcol': 'Kỳ', 'stats.group': 'Nhóm', 'stats.total': 'Tổng', 'stats.pct': 'Thời gian đến nơi nhận: trung vị {p50}, 90% trong {p90}, 99% trong {p99}',
      'm.sent': 'Gửi', 'm.received': 'Nhận', 'm.delivered': 'Đã đến', 'm.rejected': 'Từ chối', 'm.overdue': 'Quá hạn',
      'err.token': 'Mã truy cập không hợp lệ hoặc đã bị thu hồi.', lang: 'English',
    },
    en: {
      skip: 'Skip to main content', brand: 'Bus operations',
      'nav.directory': 'Directory', 'nav.systems': 'Systems', 'nav.quarantine': 'Quarantine', 'nav.federation': 'Links', 'nav.alerts': 'Alerts', 'nav.stats': 'Statistics',
      signout: 'Sign out', 'signin.title': 'Operator sign-in', 'signin.help': 'Enter an operator token, made with: docaxis operator token NAME.',
      'signin.token': 'Operator token', 'signin.remember': 'Remember on this computer', 'signin.submit': 'Sign in',
      'dir.title': 'Agency directory', 'dir.search': 'Search by code or name (diacritics optional)', 'dir.ph': 'e.g. so noi vu nghe an',
      search: 'Search', clear: 'Clear', more: 'Show more', 'dir.total': '{n} agencies in the directory', 'dir.found': 'Search results', 'dir.nothing': 'No agency found.',
      'd.code': 'Code', 'd.name': 'Name', 'd.parent': 'Parent', 'd.system': 'System', 'd.state': 'State', 'd.email': 'E-mail', 'd.old': 'Old code',
      'd.added': 'Added', 'd.children': 'Units below', 'd.cert': 'Certificate expires', 'd.bus': 'Bus',
      'st.active': 'active', 'st.suspended': 'suspended', 'st.deleted': 'deleted',
      'sys.title': 'Document systems and the agencies they serve', 'sys.id': 'System id', 'sys.name': 'Name', 'sys.agencies': 'Agencies', 'sys.cert': 'Certificate expires',
      'sys.of': 'Agencies served by {id}', 'sys.none': 'No system yet.',
      'q.title': 'Quarantined messages', 'q.time': 'Time', 'q.agency': 'Agency', 'q.reason': 'Reason', 'q.tries': 'Tries', 'q.empty': 'Nothing in quarantine.',
      'q.retry': 'Retry', 'q.retried': 'Message #{seq} retried.', 'q.message': 'Message', 'q.from': 'From', 'q.to': 'To', 'q.subject': 'Subject',
      'q.verified': 'Signature check', 'q.ok': 'valid', 'q.bad': 'invalid', 'q.envelope': 'Envelope', 'q.size': 'Size',
      'audit.title': 'Operators\u2019 audit trail', 'audit.none': 'Nothing done yet.', 'audit.retry': '{op} retried quarantined message #{target} ({agency})',
      'fed.title': 'Federation links', 'fed.peer': 'Other bus', 'fed.state': 'State', 'fed.backlog': 'Waiting', 'fed.last': 'Last delivery', 'fed.none': 'This bus is not linked to another.',
      'fed.bus': 'Bus: {bus}', 'fed.up': 'up', 'fed.down': 'down', 'fed.unknown': 'unknown',
      'alerts.title': 'Alerts', 'alerts.none': 'No alert.', 'alerts.since': 'since {t}', 'alerts.resolved': 'resolved at {t}',
      'sev.warning': 'warning', 'sev.critical': 'critical',
      'rule.not_delivered': 'Documents not delivered', 'rule.not_answered': 'Documents not answered', 'rule.cert_expiring': 'Certificate expiring',
      'rule.quarantine_growing': 'Quarantine growing', 'rule.link_down': 'Link down', 'rule.disk_filling': 'Disk filling',
      'stats.title': 'Document statistics', 'stats.from': 'From', 'stats.to': 'To', 'stats.period': 'Per', 'stats.day': 'day', 'stats.month': 'month',
      'stats.by': 'Group by', 'stats.all': 'whole bus', 'stats.agency': 'agency', 'stats.province': 'province or ministry', 'stats.system': 'system', 'stats.show': 'Show',
      'stats.periodcol': 'Period', 'stats.group': 'Group', 'stats.total': 'Total', 'stats.pct': 'Delivery time: median {p50}, 90% within {p90}, 99% within {p99}',
      'm.sent': 'Sent', 'm.received': 'Received', 'm.delivered': 'Delivered', 'm.rejected': 'Rejected', 'm.overdue': 'Overdue',
      'err.token': 'The token is not valid or was revoked.', lang: 'Tiếng Việt',
    },
  };
  const $ = (s, el = document) => el.querySelector(s);
  const el = (tag, props = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  // Vietnamese unless the operator chose English on this computer.
  let lang = localStorage.getItem('docaxis-op-lang') === 'en' ? 'en' : 'vi';
  const t = (key, vars = {}) => (T[lang][key] || T.vi[key] || key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
  const fmtTime = (s) => (s ? new Date(s).toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB') : '');
  const fmtDate = (s) => (s ? new Date(s).toLocaleDateString(lang === 'vi' ? 'vi-VN' : 'en-GB') : '');
  const fmtDur = (s) => (s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach((e) => {
      const count = e.querySelector('.count');
      e.textContent = t(e.dataset.i18n);
      if (count) e.append(' ', count);
    });
    document.querySelectorAll('[data-i18n-ph]').forEach((e) => { e.placeholder = t(e.dataset.i18nPh); });
    const b = $('#lang');
    b.textContent = t('lang');
    b.lang = lang === 'vi' ? 'en' : 'vi';
  }

  let token = sessionStorage.getItem('docaxis-op-token') || localStorage.getItem('docaxis-op-token') || '';
  async function api(path, opts = {}) {
    const r = await fetch(path, { ...opts, headers: { Authorization: `Bearer ${token}`, ...(opts.headers || {}) } });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) { signout(t('err.token')); throw new Error(body.error || 'unauthorized'); }
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    return body;
  }
  const showError = (e) => { $('#error').textContent = e ? String(e.message || e) : ''; };

  function signout(msg) {
    token = '';
    sessionStorage.removeItem('docaxis-op-token');
    localStorage.removeItem('docaxis-op-token');
    $('#nav').hidden = true;
    $('#who').hidden = true;
    show('signin');
    $('#signin-error').textContent = msg || '';
  }

  function show(view) {
    document.querySelectorAll('main > section').forEach((s) => { s.hidden = s.id !== `view-${view}`; });
    document.querySelectorAll('#nav a').forEach((a) => {
      if (a.dataset.nav === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
  }

  async function signin() {
    try {
      const me = await api('/v1/operator/me');
      $('#who-name').textContent = me.operator;
      $('#who').hidden = false;
      $('#nav').hidden = false;
      route();
      refreshAlertCount();
    } catch (e) { /* signout() already showed why */ }
  }

  // Directory: a tree whose children are read when a node opens.
  const dirLimit = 100;
  function nodeItem(a) {
    const li = el('li', { class: 'node', 'data-code': a.code, role: 'treeitem', 'aria-expanded': 'false' });
    const toggle = el('button', { type: 'button', class: 'toggle', 'aria-label': a.code, text: '+' });
    if (!a.children) toggle.disabled = true;
    toggle.addEventListener('click', () => expand(li, a));
    const name = el('button', { type: 'button', class: 'name' }, a.name || a.code, ' ', el('span', { class: 'code', text: a.code }));
    name.addEventListener('click', () => detail(a.code, name));
    const row = el('div', { class: 'row' }, toggle, name);
    if (a.state && a.state !== 'active') row.append(el('span', { class: `state ${a.state}`, text: t(`st.${a.state}`) }));
    if (a.children) row.append(el('span', { class: 'muted', text: `(${a.children})` }));
    li.append(row);
    return li;
  }
  async function loadChildren(ul, parent, offset) {
    const r = await api(`/v1/operator/directory?parent=${encodeURIComponent(parent)}&offset=${offset}&limit=${dirLimit}`);
    $('#dir-tree').dataset.total = r.total;
    $('#dir-total').textContent = t('dir.total', { n: r.total.toLocaleString() });
    ul.querySelector(':scope > li.more')?.remove();
    r.agencies.forEach((a) => ul.append(nodeItem(a)));
    if (r.next >= 0) {
      const more = el('li', { class: 'more' }, el('button', { type: 'button', text: t('more'), onclick: () => loadChildren(ul, parent, r.next).catch(showError) }));
      ul.append(more);
    }
  }
  async function expand(li, a) {
    const open = li.getAttribute('aria-expanded') === 'true';
    const btn = $(':scope > .row > .toggle', li);
    if (open) {
      li.setAttribute('aria-expanded', 'false');
      btn.textContent = '+';
      $(':scope > ul', li)?.remove();
      return;
    }
    li.setAttribute('aria-expanded', 'true');
    btn.textContent = '−';
    const ul = el('ul', { role: 'group' });
    li.append(ul);
    await loadChildren(ul, a.code, 0).catch(showError);
  }
  async function detail(code, btn) {
    document.querySelectorAll('.node .name[aria-selected]').forEach((b) => b.removeAttribute('aria-selected'));
    if (btn) btn.setAttribute('aria-selected', 'true');
    const r = await api(`/v1/operator/directory/${encodeURIComponent(code)}`).catch(showError);
    if (!r) return;
    const a = r.agency;
    const box = $('#dir-detail');
    box.replaceChildren(el('h2', { text: a.name || a.code }));
    const dl = el('dl');
    const row = (k, v) => { if (v !== undefined && v !== '' && v !== null) dl.append(el('dt', { text: t(k) }), el('dd', { text: String(v) })); };
    row('d.code', a.code); row('d.name', a.name); row('d.parent', a.parent); row('d.old', a.old_code); row('d.email', a.email);
    row('d.system', a.system); row('d.state', t(`st.${a.state}`)); row('d.bus', a.bus); row('d.added', fmtDate(a.added)); row('d.children', a.children);
    if (r.certificate) row('d.cert', fmtDate(r.certificate.not_after));
    box.append(dl);
    box.hidden = false;
  }
  async function showDirectory() {
    const tree = $('#dir-tree');
    if (!tree.dataset.loaded) {
      tree.replaceChildren();
      await loadChildren(tree, '', 0).catch(showError);
      tree.dataset.loaded = '1';
    }
    if (tree.dataset.total) $('#dir-total').textContent = t('dir.total', { n: Number(tree.dataset.total).toLocaleString() });
  }
  async function search(q) {
    const box = $('#dir-results');
    if (!q.trim()) { box.hidden = true; $('#dir-tree').hidden = false; return; }
    const r = await api(`/v1/operator/directory?q=${encodeURIComponent(q)}&limit=50`).catch(showError);
    if (!r) return;
    box.replaceChildren(el('li', { class: 'muted', text: r.agencies.length ? t('dir.found') : t('dir.nothing') }));
    r.agencies.forEach((a) => {
      box.append(el('li', { 'data-code': a.code },
        el('button', { type: 'button', text: a.name || a.code, onclick: () => detail(a.code) }), ' ',
        el('span', { class: 'code', text: a.code }),
        a.path && a.path.length ? el('span', { class: 'path', text: a.path.join(' › ') }) : null));
    });
    box.hidden = false;
    $('#dir-tree').hidden = true;
  }

  async function showSystems() {
    const r = await api('/v1/operator/systems').catch(showError);
    if (!r) return;
    const body = $('#systems');
    body.replaceChildren();
    if (!r.systems.length) body.append(el('tr', {}, el('td', { colspan: '4', class: 'empty', text: t('sys.none') })));
    r.systems.forEach((s) => {
      const tr = el('tr', { 'data-system': s.id }, el('td', {}, el('code', { text: s.id })), el('td', { text: s.name || '' }),
        el('td', { text: String(s.agencies) }), el('td', { text: fmtDate(s.not_after) }));
      tr.addEventListener('click', () => systemAgencies(s.id, tr));
      body.append(tr);
    });
  }
  async function systemAgencies(id, tr) {
    document.querySelectorAll('#systems tr.selected').forEach((x) => x.classList.remove('selected'));
    tr.classList.add('selected');
    const r = await api(`/v1/operator/systems/${encodeURIComponent(id)}/agencies?limit=500`).catch(showError);
    if (!r) return;
    const box = $('#sys-agencies');
    const ul = el('ul', { class: 'results' });
    r.agencies.forEach((a) => ul.append(el('li', { 'data-code': a.code }, el('span', { text: a.name || a.code }), ' ', el('span', { class: 'code', text: a.code }))));
    box.replaceChildren(el('h2', { text: t('sys.of', { id }) }), ul);
    box.hidden = false;
  }

  async function showQuarantine() {
    const [r, audit] = await Promise.all([api('/v1/operator/quarantine'), api('/v1/operator/audit?limit=50')]).catch((e) => { showError(e); return []; });
    if (!r) return;
    const body = $('#q-list');
    body.replaceChildren();
    $('#q-empty').hidden = r.entries.length > 0;
    r.entries.forEach((q) => {
      const retry = el('button', { type: 'button', class: 'retry', 'data-seq': String(q.seq), text: t('q.retry') });
      retry.addEventListener('click', (ev) => { ev.stopPropagation(); retryEntry(q.seq); });
      const tr = el('tr', { 'data-seq': String(q.seq) }, el('td', { text: String(q.seq) }), el('td', { text: fmtTime(q.time) }),
        el('td', {}, el('code', { text: q.agency })), el('td', { class: 'reason', text: q.reason }), el('td', { text: String(q.deliveries) }), el('td', {}, retry));
      tr.addEventListener('click', () => quarantineEntry(q.seq, tr));
      body.append(tr);
    });
    const ul = $('#audit');
    ul.replaceChildren();
    if (!audit.actions.length) ul.append(el('li', { class: 'muted', text: t('audit.none') }));
    audit.actions.forEach((a) => {
      ul.append(el('li', { 'data-seq': String(a.seq), 'data-target': a.target },
        el('span', { text: `${fmtTime(a.at)} — ${t('audit.retry', { op: a.operator, target: a.target, agency: a.agency || '' })}: ` }),
        el('span', { class: a.result === 'ok' ? 'ok' : 'fail', text: a.result })));
    });
  }
  async function quarantineEntry(seq, tr) {
    document.querySelectorAll('#q-list tr.selected').forEach((x) => x.classList.remove('selected'));
    tr.classList.add('selected');
    const r = await api(`/v1/operator/quarantine/${seq}`).catch(showError);
    if (!r) return;
    const box = $('#q-detail');
    const dl = el('dl');
    const row = (k, v) => { if (v !== undefined && v !== '' && v !== null) dl.append(el('dt', { text: t(k) }), el('dd', { text: String(v) })); };
    row('q.agency', r.entry.agency); row('q.reason', r.entry.reason); row('q.tries', r.entry.deliveries); row('q.time', fmtTime(r.entry.time));
    const m = r.message || {};
    const e = m.envelope || {};
    row('q.envelope', e.id); row('q.from', e.from); row('q.to', (e.to || []).join(', ')); row('q.subject', e.subject);
    if (m.verified !== undefined) row('q.verified', m.verified ? t('q.ok') : `${t('q.bad')}: ${m.error || ''}`);
    row('q.size', m.size);
    box.replaceChildren(el('h2', { text: `${t('q.message')} #${seq}` }), el('div', { class: 'detail' }, dl));
    box.hidden = false;
  }
  async function retryEntry(seq) {
    showError('');
    try {
      await api(`/v1/operator/quarantine/${seq}/retry`, { method: 'POST' });
      $('#q-detail').replaceChildren(el('p', { class: 'ok', text: t('q.retried', { seq }) }));
      $('#q-detail').hidden = false;
    } catch (e) { showError(e); }
    await showQuarantine();
  }

  async function showFederation() {
    const r = await api('/v1/operator/federation').catch(showError);
    if (!r) return;
    $('#fed-bus').textContent = r.bus ? t('fed.bus', { bus: r.bus }) : '';
    const body = $('#links');
    body.replaceChildren();
    $('#links-empty').hidden = r.links.length > 0;
    r.links.forEach((l) => body.append(el('tr', { 'data-peer': l.peer, 'data-state': l.state }, el('td', { text: l.peer }),
      el('td', { class: l.state === 'up' ? 'ok' : 'error', text: t(`fed.${l.state}`) }), el('td', { text: String(l.backlog) }), el('td', { text: fmtTime(l.last_delivery) }))));
  }

  async function refreshAlertCount() {
    const r = await api('/v1/operator/alerts').catch(() => null);
    if (!r) return;
    const n = r.alerts.filter((a) => a.state === 'firing').length;
    const c = $('#alert-count');
    c.textContent = String(n);
    c.hidden = n === 0;
    return r;
  }
  async function showAlerts() {
    const r = await refreshAlertCount();
    if (!r) return;
    const ul = $('#alerts-list');
    ul.replaceChildren();
    $('#alerts-empty').hidden = r.alerts.length > 0;
    r.alerts.forEach((a) => ul.append(el('li', { class: 'alert', 'data-rule': a.rule, 'data-state': a.state, 'data-severity': a.severity },
      el('strong', { text: `${t(`rule.${a.rule}`)} — ${a.subject}` }), el('div', { text: a.summary }),
      el('div', { class: 'meta', text: `${t(`sev.${a.severity}`)} · ${t('alerts.since', { t: fmtTime(a.raised) })}${a.state === 'resolved' ? ` · ${t('alerts.resolved', { t: fmtTime(a.resolved) })}` : ''}` }))));
  }

  // Statistics: grouped bars per period, drawn as SVG.
  const metrics = ['sent', 'received', 'delivered', 'rejected', 'overdue'];
  const isoDay = (d) => d.toISOString().slice(0, 10);
  async function showStats() {
    // Without dates the bus picks the last 30 days, by its calendar
    // (Vietnam time), and the form shows them.
    const q = new URLSearchParams({ period: $('#stats-period').value });
    if ($('#stats-from').value) q.set('from', $('#stats-from').value);
    if ($('#stats-to').value) q.set('to', $('#stats-to').value);
    if ($('#stats-by').value) q.set('by', $('#stats-by').value);
    const r = await api(`/v1/operator/stats?${q}`).catch(showError);
    if (!r) return;
    $('#stats-from').value = r.from.slice(0, 10);
    $('#stats-to').value = isoDay(new Date(Date.parse(r.to.slice(0, 10)) - 86400000));
    // The chart sums the groups of each period.
    const periods = new Map();
    r.rows.forEach((row) => {
      const p = periods.get(row.period) || Object.fromEntries(metrics.map((m) => [m, 0]));
      metrics.forEach((m) => { p[m] += row[m]; });
      periods.set(row.period, p);
    });
    drawChart([...periods.entries()]);
    $('#stats-legend').replaceChildren(...metrics.map((m) => el('span', {}, el('i', { class: `k-${m}` }), t(`m.${m}`))));
    $('#stats-pct').textContent = t('stats.pct', { p50: fmtDur(r.total.delivery_p50_s), p90: fmtDur(r.total.delivery_p90_s), p99: fmtDur(r.total.delivery_p99_s) });
    const body = $('#stats-table');
    body.replaceChildren();
    const line = (row, total) => el('tr', total ? { class: 'total' } : { 'data-period': row.period, 'data-key': row.key || '' },
      el('td', { text: total ? t('stats.total') : row.period }), el('td', { text: row.name ? `${row.name} (${row.key})` : (row.key || '') }),
      ...metrics.map((m) => el('td', { 'data-metric': m, text: String(row[m]) })),
      el('td', { text: fmtDur(row.delivery_p50_s) }), el('td', { text: fmtDur(row.delivery_p90_s) }));
    r.rows.slice(0, 2000).forEach((row) => body.append(line(row, false)));
    body.append(line(r.total, true));
  }
  function drawChart(periods) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    const W = 1000; const H = 260; const pad = 30;
    svg.setAttribute('viewBox', `0 0 ${W} ${H + 40}`);
    svg.setAttribute('role', 'img');
    const max = Math.max(1, ...periods.flatMap(([, p]) => metrics.map((m) => p[m])));
    const slot = (W - pad) / Math.max(1, periods.length);
    const bw = Math.min(40, Math.max(1, (slot * 0.8) / metrics.length));
    const text = (x, y, s, anchor = 'middle') => { const e = document.createElementNS(ns, 'text'); e.setAttribute('x', x); e.setAttribute('y', y); e.setAttribute('text-anchor', anchor); e.textContent = s; svg.append(e); };
    text(pad - 4, 12, String(max), 'end');
    text(pad - 4, H, '0', 'end');
    periods.forEach(([period, p], i) => {
      metrics.forEach((m, j) => {
        const h = (p[m] / max) * (H - 10);
        const r = document.createElementNS(ns, 'rect');
        r.setAttribute('x', pad + i * slot + slot * 0.1 + j * bw);
        r.setAttribute('y', H - h);
        r.setAttribute('width', bw);
        r.setAttribute('height', h);
        r.setAttribute('class', `bar k-${m}`);
        r.setAttribute('data-period', period);
        r.setAttribute('data-metric', m);
        r.setAttribute('data-value', p[m]);
        const title = document.createElementNS(ns, 'title');
        title.textContent = `${period} ${t(`m.${m}`)}: ${p[m]}`;
        r.append(title);
        svg.append(r);
      });
      if (periods.length <= 31 || i % Math.ceil(periods.length / 31) === 0) text(pad + i * slot + slot / 2, H + 16, period.length > 7 ? period.slice(5) : period);
    });
    $('#stats-chart').replaceChildren(svg);
  }

  const views = { directory: showDirectory, systems: showSystems, quarantine: showQuarantine, federation: showFederation, alerts: showAlerts, stats: showStats };
  function route() {
    if (!token) { show('signin'); return; }
    const view = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'directory';
    const fn = views[view] || showDirectory;
    show(views[view] ? view : 'directory');
    showError('');
    fn();
  }

  document.addEventListener('DOMContentLoaded', () => {
    applyLang();
    $('#lang').addEventListener('click', () => {
      lang = lang === 'vi' ? 'en' : 'vi';
      localStorage.setItem('docaxis-op-lang', lang);
      applyLang();
      if (token) route();
    });
    $('#signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      token = $('#signin-token').value.trim();
      (($('#signin-remember').checked) ? localStorage : sessionStorage).setItem('docaxis-op-token', token);
      $('#signin-token').value = '';
      $('#signin-error').textContent = '';
      signin();
    });
    $('#signout').addEventListener('click', () => signout());
    $('#dir-search').addEventListener('submit', (ev) => { ev.preventDefault(); search($('#dir-q').value); });
    $('#dir-clear').addEventListener('click', () => { $('#dir-q').value = ''; search(''); });
    $('#stats-form').addEventListener('submit', (ev) => { ev.preventDefault(); showStats(); });
    window.addEventListener('hashchange', route);
    if (token) signin(); else show('signin');
    setInterval(() => { if (token) refreshAlertCount(); }, 60000);
  });
})();
