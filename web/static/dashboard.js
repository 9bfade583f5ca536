/* pollcast dashboard: the owners' console at /dashboard. Plain JavaScript, no
 * build step, no libraries; charts are small hand-drawn SVG. It speaks only
 * the public API (API.md) with the API key kept in session storage. Poll text
 * is only ever inserted as text. */
(() => {
  'use strict';

  const D = document;
  const app = D.getElementById('app');
  const nav = D.getElementById('nav');
  const toastEl = D.getElementById('toast');
  const KEY = 'pollcast:key';
  const GONE = 'This poll does not exist or was deleted.';
  const SVGNS = 'http://www.w3.org/2000/svg';

  // ---- small helpers -------------------------------------------------------

  // h builds an element; strings and numbers become text nodes, never HTML.
  function h(tag, props, ...kids) {
    const el = D.createElement(tag);
    setProps(el, props);
    for (const k of kids.flat(Infinity)) if (k != null && k !== false) el.append(k);
    return el;
  }

  function setProps(el, props) {
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.setAttribute('class', v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = true;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }

  // s builds an SVG element.
  function s(tag, attrs, ...kids) {
    const el = D.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const k of kids.flat()) if (k != null) el.append(k);
    return el;
  }

  const nf = new Intl.NumberFormat();
  const num = (n) => nf.format(n || 0);
  const plural = (n, one, many) => num(n) + ' ' + (n === 1 ? one : many);
  const dateTime = (t) => (t ? new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—');
  const regionNames = typeof Intl.DisplayNames === 'function' ? new Intl.DisplayNames(undefined, { type: 'region' }) : null;

  function countryName(code) {
    if (!code) return 'Unknown';
    try {
      const n = regionNames && regionNames.of(code);
      return n && n !== code ? n + ' (' + code + ')' : code;
    } catch {
      return code;
    }
  }

  let toastTimer;
  function toast(text) {
    toastEl.textContent = text;
    toastEl.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toastEl.classList.remove('show'), 4000);
  }

  function statusBadge(status) {
    return h('span', { class: 'badge ' + status }, status);
  }

  async function copy(text, input) {
    let ok = true;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      ok = false;
      if (input) {
        input.select();
        ok = D.execCommand('copy');
      }
    }
    toast(ok ? 'Copied to the clipboard.' : 'Copying is blocked here: the text is selected, copy it by hand.');
  }

  // ---- the API -------------------------------------------------------------

  let key = sessionStorage.getItem(KEY) || '';

  class APIError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || 'The server answered ' + status + '.');
      this.status = status;
      this.code = problem.code || '';
    }
  }

  async function api(method, path, body, opts = {}) {
    const headers = { Authorization: 'Bearer ' + (opts.key || key) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new APIError(0, { detail: 'The server could not be reached. Check your connection.' });
    }
    if (r.status === 204) return null;
    const text = await r.text();
    let data;
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = {};
    }
    if (!r.ok) {
      if (r.status === 401 && !opts.key) signOut('Your API key was not accepted. Sign in again.');
      throw new APIError(r.status, data);
    }
    return data;
  }

  const pollPath = (id) => '/v1/polls/' + encodeURIComponent(id);

  // ---- routing -------------------------------------------------------------

  let cleanup = [];
  const onLeave = (fn) => cleanup.push(fn);

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function signOut(message) {
    key = '';
    sessionStorage.removeItem(KEY);
    go('#/');
    if (message) toast(message);
  }

  function show(title, ...kids) {
    D.title = title + ' · pollcast';
    app.replaceChildren(...kids);
    const h1 = app.querySelector('h1');
    if (h1) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
    }
  }

  function route() {
    for (const fn of cleanup) fn();
    cleanup = [];
    nav.hidden = !key;
    if (!key) {
      signIn();
      return;
    }
    let parts;
    try {
      parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    } catch {
      parts = []; // a malformed address: the list
    }
    if (parts[0] === 'new') pollForm(null);
    else if (parts[0] === 'polls' && parts[1] && parts[2] === 'edit') editPoll(parts[1]);
    else if (parts[0] === 'polls' && parts[1]) pollView(parts[1]);
    else pollList();
  }

  // ---- sign in -------------------------------------------------------------

  function signIn() {
    const input = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
    const err = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'card narrow', onsubmit: async (e) => {
      e.preventDefault();
      const k = input.value.trim();
      if (!k) return;
      err.textContent = '';
      try {
        await api('GET', '/v1/polls?limit=1', undefined, { key: k });
      } catch (ex) {
        err.textContent = ex.status === 401 ? 'That API key was not accepted.' : ex.message;
        input.focus();
        return;
      }
      key = k;
      sessionStorage.setItem(KEY, k);
      go('#/');
    } },
    h('h1', null, 'Sign in'),
    h('p', { class: 'muted' }, 'Use an API key of pollcast. It is kept in this browser tab only, until you close it or sign out.'),
    h('label', { for: 'key' }, 'API key'), input, err,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
    show('Sign in', form);
  }

  // ---- the list of polls ---------------------------------------------------

  function pollList() {
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const status = params.get('status') || '';
    const tbody = h('tbody');
    const more = h('button', { type: 'button', class: 'quiet', hidden: true }, 'Load more');
    const empty = h('p', { class: 'empty', hidden: true }, 'No polls yet. ', h('a', { href: '#/new' }, 'Create your first poll'), '.');
    const err = h('p', { class: 'error', role: 'alert' });
    const filter = h('select', { id: 'status-filter', onchange: () => go('#/' + (filter.value ? '?status=' + filter.value : '')) },
      ['', 'open', 'scheduled', 'closed'].map((v) => h('option', { value: v, selected: v === status }, v ? v[0].toUpperCase() + v.slice(1) : 'All')));
    let cursor = '';
    const ctl = new AbortController();
    onLeave(() => ctl.abort());

    async function page() {
      more.disabled = true;
      const q = new URLSearchParams({ limit: '50' });
      if (status) q.set('status', status);
      if (cursor) q.set('cursor', cursor);
      let data;
      try {
        data = await api('GET', '/v1/polls?' + q, undefined, { signal: ctl.signal });
      } catch (e) {
        if (e.name !== 'AbortError') err.textContent = e.message;
        return;
      }
      for (const p of data.polls) {
        const total = h('td', { class: 'num' }, '…');
        tbody.append(h('tr', { 'data-poll': p.id },
          h('td', null, h('a', { href: '#/polls/' + encodeURIComponent(p.id) }, p.question)),
          h('td', null, statusBadge(p.status)),
          total,
          h('td', { class: 'when' }, dateTime(p.created_at))));
        api('GET', pollPath(p.id) + '/results', undefined, { signal: ctl.signal })
          .then((r) => { total.textContent = num(r.total); })
          .catch(() => { total.textContent = '—'; });
      }
      cursor = data.next_cursor || '';
      more.hidden = !cursor;
      more.disabled = false;
      empty.hidden = tbody.children.length > 0;
    }
    more.addEventListener('click', page);

    show('Polls',
      h('div', { class: 'head' },
        h('h1', null, 'Polls'),
        h('div', { class: 'tools' },
          h('label', { for: 'status-filter', class: 'inline' }, 'Status'), filter,
          h('a', { class: 'button primary', href: '#/new' }, 'New poll'))),
      err,
      h('div', { class: 'card flush' },
        h('table', { class: 'polls' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Question'), h('th', { scope: 'col' }, 'Status'),
            h('th', { scope: 'col', class: 'num' }, 'Votes'), h('th', { scope: 'col' }, 'Created'))),
          tbody),
        empty),
      more);
    page();
  }

  // ---- create and edit -----------------------------------------------------

  const pad = (n) => String(n).padStart(2, '0');
  function toLocalInput(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  const fromLocalInput = (v) => (v ? new Date(v).toISOString() : null);

  // Views that load before they show abort the load when left, so that a
  // slow answer never replaces the page navigated to meanwhile.
  function leaving() {
    const ctl = new AbortController();
    onLeave(() => ctl.abort());
    return ctl;
  }

  async function editPoll(id) {
    show('Edit poll', h('p', { class: 'muted' }, 'Loading…'));
    const ctl = leaving();
    let p;
    try {
      p = await api('GET', pollPath(id), undefined, { signal: ctl.signal });
    } catch (e) {
      if (e.name !== 'AbortError') show('Edit poll', h('h1', null, 'Edit poll'), h('p', { class: 'error' }, e.message));
      return;
    }
    pollForm(p);
  }

  function field(id, label, control, help) {
    const helpEl = help ? h('p', { class: 'help', id: id + '-help' }, help) : null;
    if (helpEl) control.setAttribute('aria-describedby', id + '-help');
    return h('div', { class: 'field', 'data-field': id }, h('label', { for: id }, label), control, helpEl,
      h('p', { class: 'field-error', id: id + '-error' }));
  }

  function pollForm(poll) {
    const editing = !!poll;
    const p = poll || { question: '', kind: 'single', max_choices: 1, options: [{ label: '' }, { label: '' }], dedupe: 'device',
      results_visibility: 'always', opens_at: null, closes_at: null, allowed_origins: [] };

    const question = h('textarea', { id: 'question', name: 'question', rows: '2', maxlength: '500', required: true, value: p.question });
    const optionList = h('ol', { class: 'options' });
    const addOption = (o) => {
      const input = h('input', { type: 'text', maxlength: '200', required: true, value: o.label, 'aria-label': 'Option label' });
      const li = h('li', { 'data-id': o.id || '' }, input,
        h('button', { type: 'button', class: 'quiet', 'aria-label': 'Remove option', onclick: () => {
          li.remove();
          renumber();
        } }, 'Remove'));
      optionList.append(li);
      renumber();
      return input;
    };
    const renumber = () => {
      [...optionList.children].forEach((li, i) => {
        li.querySelector('input').setAttribute('aria-label', 'Option ' + (i + 1));
        li.querySelector('button').setAttribute('aria-label', 'Remove option ' + (i + 1));
        li.querySelector('input').name = 'options[' + i + ']';
      });
    };
    p.options.forEach(addOption);

    const kind = h('select', { id: 'kind', name: 'kind', disabled: editing, onchange: () => { maxWrap.hidden = kind.value !== 'multiple'; } },
      h('option', { value: 'single', selected: p.kind === 'single' }, 'Single choice'),
      h('option', { value: 'multiple', selected: p.kind === 'multiple' }, 'Multiple choice'));
    const maxChoices = h('input', { id: 'max_choices', name: 'max_choices', type: 'number', min: '1', max: '50',
      value: String(p.kind === 'multiple' ? p.max_choices : 2) });
    const maxWrap = field('max_choices', 'Most choices a vote may make', maxChoices);
    maxWrap.hidden = p.kind !== 'multiple';
    const dedupe = h('select', { id: 'dedupe', name: 'dedupe', disabled: editing },
      [['device', 'One vote per device'], ['ip', 'One vote per network address'], ['token', 'One vote per signed-in voter (voter token)'],
        ['none', 'Every vote counts']].map(([v, t]) => h('option', { value: v, selected: p.dedupe === v }, t)));
    const visibility = h('select', { id: 'results_visibility', name: 'results_visibility' },
      [['always', 'Always'], ['after_vote', 'After the visitor votes'], ['after_close', 'When the poll closes'], ['owner', 'Only to you']]
        .map(([v, t]) => h('option', { value: v, selected: p.results_visibility === v }, t)));
    const opensAt = h('input', { id: 'opens_at', name: 'opens_at', type: 'datetime-local', value: toLocalInput(p.opens_at) });
    const closesAt = h('input', { id: 'closes_at', name: 'closes_at', type: 'datetime-local', value: toLocalInput(p.closes_at) });
    const origins = h('textarea', { id: 'allowed_origins', name: 'allowed_origins', rows: '3', spellcheck: 'false',
      placeholder: 'https://news.example.com', value: (p.allowed_origins || []).join('\n') });
    const summary = h('div', { class: 'error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'primary' }, editing ? 'Save changes' : 'Create poll');

    const clearErrors = () => {
      summary.textContent = '';
      for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    };

    // showProblem puts the API's message beside the field it names.
    const showProblem = (e) => {
      summary.textContent = e.message;
      const m = /^([a-z_]+)(?:\[(\d+)\])?/.exec(e.code === 'invalid' ? e.message : '');
      if (!m) return;
      let control = form.querySelector('[name="' + m[1] + '"]');
      if (m[1] === 'options') control = m[2] != null ? optionList.children[+m[2]]?.querySelector('input') : optionList.querySelector('input');
      if (!control) return;
      control.setAttribute('aria-invalid', 'true');
      const errEl = form.querySelector('[data-field="' + m[1] + '"] .field-error');
      if (errEl) errEl.textContent = e.message.slice(e.message.indexOf(':') + 1).trim();
      control.focus();
    };

    const form = h('form', { class: 'card', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors();
      const options = [...optionList.children].map((li) => {
        const o = { label: li.querySelector('input').value };
        if (li.dataset.id) o.id = li.dataset.id;
        return o;
      });
      const body = {
        question: question.value,
        options,
        results_visibility: visibility.value,
        opens_at: fromLocalInput(opensAt.value),
        closes_at: fromLocalInput(closesAt.value),
        allowed_origins: origins.value.split(/[\s,]+/).filter(Boolean),
      };
      if ((editing ? p.kind : kind.value) === 'multiple') body.max_choices = parseInt(maxChoices.value, 10) || 0;
      if (!editing) {
        body.kind = kind.value;
        body.dedupe = dedupe.value;
      }
      submit.disabled = true;
      try {
        const saved = editing ? await api('PATCH', pollPath(p.id), body) : await api('POST', '/v1/polls', body);
        toast(editing ? 'Changes saved.' : 'Poll created.');
        go('#/polls/' + encodeURIComponent(saved.id));
      } catch (ex) {
        showProblem(ex);
      } finally {
        submit.disabled = false;
      }
    } },
    h('h1', null, editing ? 'Edit poll' : 'New poll'),
    summary,
    field('question', 'Question', question),
    h('fieldset', { class: 'field', 'data-field': 'options' },
      h('legend', null, 'Options'),
      optionList,
      h('p', { class: 'field-error' }),
      h('button', { type: 'button', class: 'quiet', onclick: () => addOption({ label: '' }).focus() }, 'Add option')),
    h('div', { class: 'grid' },
      field('kind', 'Kind', kind, editing ? 'Cannot change once created.' : null),
      maxWrap,
      field('dedupe', 'Who may vote once', dedupe, editing ? 'Cannot change once created.' : 'Token polls take a voter token signed with the poll\'s voter secret.'),
      field('results_visibility', 'Who sees results', visibility),
      field('opens_at', 'Opens at (your time)', opensAt, 'Empty: open now.'),
      field('closes_at', 'Closes at (your time)', closesAt, 'Empty: open until you close it.')),
    field('allowed_origins', 'Sites that may embed it', origins, 'One origin a line, like https://news.example.com. Empty: any site.'),
    h('div', { class: 'actions' }, submit,
      h('a', { class: 'button quiet', href: editing ? '#/polls/' + encodeURIComponent(p.id) : '#/' }, 'Cancel')));
    show(editing ? 'Edit poll' : 'New poll', form);
  }

  // ---- one poll ------------------------------------------------------------

  // follow reads the poll's live results as Server-Sent Events over fetch, so
  // that the API key goes in a header: owners see results whatever the
  // poll's visibility. It reconnects with backoff until signal aborts.
  async function follow(id, signal, onMessage, onState) {
    let tries = 0;
    while (!signal.aborted) {
      try {
        const r = await fetch(pollPath(id) + '/events', { headers: { Authorization: 'Bearer ' + key, Accept: 'text/event-stream' }, signal });
        if (r.status === 401) return signOut('Your API key was not accepted. Sign in again.');
        if (r.status === 403 || r.status === 404) return onState(false, r.status === 404 ? GONE : 'This key may not follow this poll.');
        if (!r.ok) throw new Error('HTTP ' + r.status);
        onState(true);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
            }
            if (data) {
              tries = 0;
              onMessage(event, JSON.parse(data));
            }
          }
        }
      } catch (e) {
        if (signal.aborted || e.name === 'AbortError') return;
      }
      // A last message may have ended the view (a deleted poll) in the same
      // read that ended the stream: then there is nothing to reconnect.
      if (signal.aborted) return;
      onState(false);
      const wait = Math.min(30000, 500 * 2 ** Math.min(tries++, 6));
      await new Promise((res) => setTimeout(res, wait / 2 + Math.random() * wait / 2));
    }
  }

  async function pollView(id) {
    show('Poll', h('p', { class: 'muted' }, 'Loading…'));
    const ctl = leaving();
    let poll;
    try {
      poll = await api('GET', pollPath(id), undefined, { signal: ctl.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      show('Poll', h('h1', null, 'Poll'), h('p', { class: 'error' }, e.code === 'not_found' ? GONE : e.message),
        h('p', null, h('a', { href: '#/' }, 'Back to the polls')));
      return;
    }

    const header = h('div');
    const results = h('div', { class: 'results', 'aria-live': 'off' });
    const totals = h('p', { class: 'totals' });
    const liveState = h('span', { class: 'live-state' }, 'Connecting…');
    const rateNow = h('span', { class: 'rate-now' }, '0 votes/s');
    const rateChart = h('div', { class: 'chart rate' });
    let res = null;

    function renderHeader() {
      const open = poll.status !== 'closed';
      header.replaceChildren(
        h('div', { class: 'head' },
          h('div', null,
            h('p', { class: 'crumb' }, h('a', { href: '#/' }, 'Polls')),
            h('h1', null, poll.question),
            h('p', { class: 'meta' }, statusBadge(poll.status),
              ' ' + (poll.kind === 'multiple' ? 'Multiple choice (up to ' + poll.max_choices + ')' : 'Single choice') +
              ' · one vote per ' + ({ device: 'device', ip: 'network address', token: 'signed-in voter', none: 'vote (no limit)' }[poll.dedupe] || poll.dedupe) +
              ' · results ' + ({ always: 'always shown', after_vote: 'shown after voting', after_close: 'shown when closed', owner: 'shown to you only' }[poll.results_visibility] || ''),
              poll.opens_at ? ' · opens ' + dateTime(poll.opens_at) : '',
              poll.closes_at ? ' · closes ' + dateTime(poll.closes_at) : '')),
          h('div', { class: 'tools' },
            h('button', { type: 'button', class: open ? 'danger' : 'primary', id: 'toggle-open', onclick: () => setOpen(!open) },
              open ? 'Close poll' : 'Open poll'),
            h('a', { class: 'button quiet', href: '#/polls/' + encodeURIComponent(poll.id) + '/edit' }, 'Edit'),
            h('button', { type: 'button', class: 'quiet', onclick: remove }, 'Delete'))));
    }

    // refreshHeader rebuilds the header and keeps the keyboard focus on the
    // open/close button when it was there.
    function refreshHeader() {
      const focused = D.activeElement && D.activeElement.id === 'toggle-open';
      renderHeader();
      if (focused) D.getElementById('toggle-open').focus();
    }

    async function setOpen(open) {
      try {
        poll = await api('POST', pollPath(poll.id) + (open ? '/open' : '/close'));
        refreshHeader();
        renderResults();
        toast(open ? 'The poll is open.' : 'The poll is closed.');
      } catch (e) {
        toast(e.message);
      }
    }

    async function remove() {
      if (!confirm('Delete this poll? Its results go away; analytics keep its votes for export.')) return;
      try {
        await api('DELETE', pollPath(poll.id));
        toast('Poll deleted.');
        go('#/');
      } catch (e) {
        toast(e.message);
      }
    }

    const bars = {};
    function renderResults() {
      results.replaceChildren(...poll.options.map((o) => {
        const b = { fill: h('div', { class: 'fill' }), pct: h('span', { class: 'pct' }), count: h('span', { class: 'count' }) };
        b.row = h('div', { class: 'bar', 'data-option': o.id },
          h('div', { class: 'label' }, h('span', { class: 'name' }, o.label), h('span', null, b.count, ' · ', b.pct)),
          h('div', { class: 'track' }, b.fill));
        bars[o.id] = b;
        return b.row;
      }));
      updateResults();
    }

    function updateResults() {
      if (!res) return;
      for (const o of res.options) {
        const b = bars[o.id];
        if (!b) continue;
        const pct = res.total ? Math.round((o.votes / res.total) * 100) : 0;
        b.fill.style.width = pct + '%';
        b.pct.textContent = pct + '%';
        b.count.textContent = plural(o.votes, 'vote', 'votes');
        b.row.dataset.votes = o.votes;
      }
      totals.replaceChildren(h('strong', { id: 'total' }, num(res.total)), ' ' + (res.total === 1 ? 'vote' : 'votes') + ' from ',
        h('strong', null, num(res.voters)), ' ' + (res.voters === 1 ? 'voter' : 'voters'));
    }

    // Votes per second over the last minute, sampled from the live totals.
    const samples = [];
    let lastTotal = null;
    let lastAt = 0;
    function sample() {
      const now = Date.now();
      if (res && lastTotal != null) samples.push(Math.max(0, (res.total - lastTotal) / ((now - lastAt) / 1000)));
      else samples.push(0);
      if (samples.length > 60) samples.shift();
      if (res) lastTotal = res.total;
      lastAt = now;
      rateNow.textContent = (samples[samples.length - 1] || 0).toFixed(samples[samples.length - 1] % 1 ? 1 : 0) + ' votes/s';
      rateChart.replaceChildren(lineChart(samples, 60, 'Votes per second over the last minute', rateChart.clientWidth));
    }
    const timer = setInterval(sample, 1000);
    onLeave(() => clearInterval(timer));

    follow(poll.id, ctl.signal, (event, m) => {
      if (event === 'results') {
        if (lastTotal == null) {
          lastTotal = m.total; // the baseline of the rate: the first results seen
          lastAt = Date.now();
        }
        res = m;
        updateResults();
      } else if (event === 'poll' && m.deleted) {
        ctl.abort();
        liveState.textContent = GONE;
        liveState.classList.remove('on');
      } else if (event === 'poll') {
        const { allowed_origins: origins, voter_secret: secret } = poll; // the owner's fields
        poll = m;
        Object.assign(poll, { allowed_origins: origins, voter_secret: secret });
        refreshHeader();
        renderResults();
      }
    }, (on, why) => {
      liveState.textContent = on ? 'Live' : why || 'Reconnecting…';
      liveState.classList.toggle('on', on);
    });

    renderHeader();
    renderResults();
    sample();
    show(poll.question,
      header,
      h('div', { class: 'cols' },
        h('section', { class: 'card', 'aria-labelledby': 'results-h' },
          h('div', { class: 'card-head' }, h('h2', { id: 'results-h' }, 'Live results'), liveState),
          totals, results,
          h('div', { class: 'card-head sub' }, h('h3', null, 'Votes per second'), rateNow),
          rateChart),
        shareCard(poll)),
      analyticsCard(poll, ctl.signal));
  }

  function shareCard(poll) {
    const origin = location.origin;
    const snippet = '<script src="' + origin + '/embed.js" data-poll="' + poll.id + '" async></script>';
    const link = origin + '/p/' + encodeURIComponent(poll.id);
    const snippetEl = h('textarea', { id: 'snippet', readonly: true, rows: '3', spellcheck: 'false', value: snippet });
    const linkEl = h('input', { id: 'hosted', type: 'text', readonly: true, value: link });
    return h('section', { class: 'card', 'aria-labelledby': 'share-h' },
      h('h2', { id: 'share-h' }, 'Share'),
      h('label', { for: 'snippet' }, 'Embed on a page'), snippetEl,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'quiet', onclick: () => copy(snippet, snippetEl) }, 'Copy snippet')),
      h('label', { for: 'hosted' }, 'Hosted poll page'), linkEl,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', onclick: () => copy(link, linkEl) }, 'Copy link'),
        h('a', { class: 'button quiet', href: link, target: '_blank', rel: 'noopener' }, 'Open page')),
      poll.dedupe === 'token' && poll.voter_secret ? secretField(poll.voter_secret) : null,
      h('h3', null, 'Export'),
      h('button', { type: 'button', class: 'quiet', onclick: () => exportCSV(poll) }, 'Download votes (CSV)'));
  }

  // secretField shows a token poll's voter secret on request: the owner's
  // site signs voter tokens with it.
  function secretField(secret) {
    const el = h('input', { id: 'voter-secret', type: 'password', readonly: true, value: secret, autocomplete: 'off' });
    const reveal = h('button', { type: 'button', class: 'quiet', 'aria-pressed': 'false' }, 'Show');
    reveal.addEventListener('click', () => {
      const shown = el.type === 'password';
      el.type = shown ? 'text' : 'password';
      reveal.textContent = shown ? 'Hide' : 'Show';
      reveal.setAttribute('aria-pressed', String(shown));
    });
    return [
      h('label', { for: 'voter-secret' }, 'Voter token secret'), el,
      h('p', { class: 'help' }, 'Your website signs voter tokens with it (HS256 JWT, sub = the voter) and passes them to the widget as data-voter. Keep it on your server.'),
      h('div', { class: 'actions' }, reveal,
        h('button', { type: 'button', class: 'quiet', onclick: () => copy(secret, el) }, 'Copy secret')),
    ];
  }

  async function exportCSV(poll) {
    try {
      const r = await fetch(pollPath(poll.id) + '/votes.csv', { headers: { Authorization: 'Bearer ' + key } });
      if (r.status === 404) {
        toast('No votes to export yet.');
        return;
      }
      if (!r.ok) throw new Error('The export failed (' + r.status + ').');
      const url = URL.createObjectURL(await r.blob());
      const a = h('a', { href: url, download: 'poll-' + poll.id + '-votes.csv' });
      D.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      toast(e.message);
    }
  }

  // ---- analytics -----------------------------------------------------------

  const STEPS = { '1m': 60e3, '5m': 300e3, '1h': 3600e3, '1d': 86400e3 };
  // The window each step shows: about 100 to 200 points.
  const WINDOW = { '1m': 2 * 3600e3, '5m': 12 * 3600e3, '1h': 7 * 86400e3, '1d': 180 * 86400e3 };
  const DIMENSIONS = [['country', 'Countries'], ['region', 'Regions'], ['device', 'Devices'], ['referrer', 'Referring sites']];

  function defaultStep(poll) {
    const age = Date.now() - new Date(poll.created_at).getTime();
    return Object.keys(WINDOW).find((s) => age <= WINDOW[s]) || '1d';
  }

  function analyticsCard(poll, signal) {
    const body = h('div', { class: 'analytics-body' }, h('p', { class: 'muted' }, 'Loading analytics…'));
    let step = defaultStep(poll);
    const stepSel = h('select', { id: 'step', onchange: () => { step = stepSel.value; load(); } },
      Object.keys(STEPS).map((k) => h('option', { value: k, selected: k === step }, 'per ' + { '1m': 'minute', '5m': '5 minutes', '1h': 'hour', '1d': 'day' }[k])));
    const labels = Object.fromEntries(poll.options.map((o) => [o.id, o.label]));
    let loads = 0; // an answer to an older load is dropped

    async function load() {
      const seq = ++loads;
      const now = Date.now();
      // Since the poll began, within the step's window, and at least 30 steps.
      const from = Math.min(now - 30 * STEPS[step], Math.max(new Date(poll.created_at).getTime(), now - WINDOW[step]));
      const q = new URLSearchParams({ step, from: new Date(Math.floor(from / STEPS[step]) * STEPS[step]).toISOString().replace('.000', '') });
      let tl;
      let bds;
      try {
        [tl, ...bds] = await Promise.all([
          api('GET', pollPath(poll.id) + '/analytics/timeline?' + q, undefined, { signal }),
          ...DIMENSIONS.map(([d]) => api('GET', pollPath(poll.id) + '/analytics/breakdown?by=' + d, undefined, { signal })),
        ]);
      } catch (e) {
        if (e.name === 'AbortError' || seq !== loads) return;
        if (e.status === 404) {
          body.replaceChildren(h('div', { class: 'calm', id: 'no-analytics' }, h('p', null, 'No analytics yet.'),
            h('p', { class: 'muted' }, 'Charts of votes over time and by country, region, device and referring site appear here once analytics are available for this poll.')));
        } else body.replaceChildren(h('p', { class: 'error' }, 'Analytics could not be loaded: ' + e.message));
        return;
      }
      if (seq !== loads) return;
      const points = tl.points || [];
      const any = points.some((p) => p.votes > 0) || bds.some((b) => (b.rows || []).length);
      if (!any) {
        body.replaceChildren(h('div', { class: 'calm', id: 'no-analytics' }, h('p', null, 'No analytics yet.'),
          h('p', { class: 'muted' }, 'Votes appear here a few seconds after they are cast.')));
        return;
      }
      // The refresh keeps the tables that were open.
      const open = new Set([...body.querySelectorAll('details[open]')].map((d) => d.dataset.table));
      const counted = points.filter((p) => p.votes > 0);
      body.replaceChildren(
        h('h3', null, 'Votes over time'),
        chart('timeline', (w) => barChart(points, step, w)),
        counted.length ? table('timeline', open, 'Time', poll, labels, counted.map((p) => [dateTime(p.t), p])) : null,
        h('div', { class: 'breakdowns' }, DIMENSIONS.map(([d, title], i) => breakdown(d, title, bds[i].rows || [], poll, labels, open))));
      drawCharts(body);
    }
    const onResize = () => drawCharts(body);
    addEventListener('resize', onResize);
    signal.addEventListener('abort', () => removeEventListener('resize', onResize));

    const refresh = setInterval(() => { if (!D.hidden) load(); }, 15000);
    signal.addEventListener('abort', () => clearInterval(refresh));
    load();
    return h('section', { class: 'card', 'aria-labelledby': 'analytics-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'analytics-h' }, 'Analytics'),
        h('div', { class: 'tools' },
          h('label', { for: 'step', class: 'inline' }, 'Timeline'), stepSel,
          h('button', { type: 'button', class: 'quiet', onclick: load }, 'Refresh'))),
      body);
  }

  // table is a chart's numbers, behind a "Table" disclosure: one row per
  // [heading, {votes, by_option}].
  function table(name, open, title, poll, labels, rows) {
    return h('details', { 'data-table': name, open: open.has(name) }, h('summary', null, 'Table'),
      h('div', { class: 'scroll' }, h('table', null,
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, title), h('th', { scope: 'col', class: 'num' }, 'Votes'),
          poll.options.map((o) => h('th', { scope: 'col', class: 'num' }, labels[o.id])))),
        h('tbody', null, rows.map(([head, r]) => h('tr', null, h('th', { scope: 'row' }, head), h('td', { class: 'num' }, num(r.votes)),
          poll.options.map((o) => h('td', { class: 'num' }, num((r.by_option || {})[o.id])))))))));
  }

  function breakdown(dim, title, rows, poll, labels, open) {
    rows = [...rows].sort((a, b) => b.votes - a.votes);
    const name = (k) => (dim === 'country' ? countryName(k) : k || (dim === 'referrer' ? 'Direct or unknown' : 'Unknown'));
    const max = Math.max(1, ...rows.map((r) => r.votes));
    const top = rows.slice(0, 8);
    return h('section', { class: 'breakdown', 'data-by': dim },
      h('h3', null, title),
      rows.length ? [
        chart('hbars', (w) => hbars(top.map((r) => [name(r.key), r.votes]), max, title, w)),
        table(dim, open, title, poll, labels, rows.map((r) => [name(r.key), r])),
      ] : h('p', { class: 'muted' }, 'No votes yet.'));
  }

  // ---- charts: small hand-drawn SVG ----------------------------------------

  // chart is a box for an SVG drawn at the box's own width (so that its
  // text keeps its size); drawCharts draws the boxes once they are laid out.
  function chart(kind, draw) {
    const box = h('div', { class: 'chart ' + kind });
    box.draw = draw;
    return box;
  }

  function drawCharts(root) {
    for (const box of root.querySelectorAll('.chart')) {
      if (box.draw && box.clientWidth) box.replaceChildren(box.draw(box.clientWidth));
    }
  }

  // hbars draws labelled horizontal bars.
  function hbars(items, max, title, W) {
    const rowH = 36;
    const chars = Math.max(8, Math.floor((W - 40) / 7));
    const short = (t) => (t.length > chars ? t.slice(0, chars - 1) + '…' : t);
    return s('svg', { class: 'hbars', viewBox: '0 0 ' + W + ' ' + items.length * rowH, width: String(W), height: String(items.length * rowH), role: 'img',
      'aria-label': title + ': ' + items.map(([k, v]) => k + ' ' + v).join(', ') },
    items.map(([label, v], i) => {
      const y = i * rowH;
      return s('g', null,
        s('title', null, label + ': ' + plural(v, 'vote', 'votes')),
        s('text', { x: '0', y: String(y + 14), class: 'hlabel' }, short(label)),
        s('text', { x: String(W), y: String(y + 14), class: 'hval' }, num(v)),
        s('rect', { x: '0', y: String(y + 20), width: String(W), height: '8', rx: '4', class: 'htrack' }),
        s('rect', { x: '0', y: String(y + 20), width: Math.max(2, (v / max) * W).toFixed(1), height: '8', rx: '4', class: 'hbar' }));
    }));
  }

  // barChart draws the timeline: one bar per step.
  function barChart(points, step, W) {
    const H = 140;
    const pad = 28;
    const max = Math.max(1, ...points.map((p) => p.votes));
    const bw = points.length ? (W - pad) / points.length : 0;
    const fmt = (t) => new Date(t).toLocaleString(undefined, step === '1d' ? { dateStyle: 'medium' } : { dateStyle: 'short', timeStyle: 'short' });
    const total = points.reduce((a, p) => a + p.votes, 0);
    return s('svg', { viewBox: '0 0 ' + W + ' ' + (H + 18), width: String(W), height: String(H + 18), role: 'img', class: 'bars',
      'aria-label': 'Votes per ' + step + ': ' + total + ' votes from ' + (points[0] ? fmt(points[0].t) : '') + ' to ' + (points.length ? fmt(points[points.length - 1].t) : '') },
    s('line', { x1: String(pad), y1: String(H), x2: String(W), y2: String(H), class: 'axis' }),
    s('text', { x: '0', y: '10', class: 'tick' }, String(max)),
    s('text', { x: '0', y: String(H), class: 'tick' }, '0'),
    points.map((p, i) => {
      const bh = (p.votes / max) * (H - 10);
      return s('rect', { x: (pad + i * bw + bw * 0.1).toFixed(1), y: (H - bh).toFixed(1), width: Math.max(0.5, bw * 0.8).toFixed(1), height: bh.toFixed(1), class: 'tbar' },
        s('title', null, fmt(p.t) + ': ' + plural(p.votes, 'vote', 'votes')));
    }),
    points.length ? s('text', { x: String(pad), y: String(H + 15), class: 'tick' }, fmt(points[0].t)) : null,
    points.length > 1 ? s('text', { x: String(W), y: String(H + 15), class: 'tick end' }, fmt(points[points.length - 1].t)) : null);
  }

  // lineChart draws the last n samples as a line.
  function lineChart(values, n, label, W) {
    W = W || 300;
    const H = 60;
    const max = Math.max(1, ...values);
    const x = (i) => ((i + n - values.length) / (n - 1)) * W;
    const y = (v) => H - 2 - (v / max) * (H - 6);
    const pts = values.map((v, i) => x(i).toFixed(1) + ',' + y(v).toFixed(1)).join(' ');
    return s('svg', { viewBox: '0 0 ' + W + ' ' + H, width: String(W), height: String(H), role: 'img',
      'aria-label': label + ': now ' + (values[values.length - 1] || 0).toFixed(1) + ', peak ' + Math.max(0, ...values).toFixed(1) },
      s('line', { x1: '0', y1: String(H - 2), x2: String(W), y2: String(H - 2), class: 'axis' }),
      values.length > 1 ? s('polyline', { points: pts, class: 'line' }) : null,
      s('text', { x: '2', y: '10', class: 'tick' }, 'peak ' + +Math.max(0, ...values).toFixed(1) + '/s'));
  }

  // ---- start ---------------------------------------------------------------

  D.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
  addEventListener('hashchange', route);
  route();
})();
