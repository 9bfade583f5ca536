/*! pollcast widget: <script src="https://HOST/embed.js" data-poll="ID" async></script>
 * Also data-target="#el", data-theme="light|dark|auto", data-voter="TOKEN"; pollcast.mount(el, {poll,
 * voter, theme}); events pollcast:vote and pollcast:results. */
(() => {
'use strict';
const W = window;
const D = document;
if (W.pollcast && W.pollcast.scan) {
  W.pollcast.scan(); // embed.js twice on a page: mount the new tags only
  return;
}
const me = D.currentScript;
const API = me && me.src ? new URL(me.src, location.href).origin : location.origin;

const CSS = `
:host{all:initial;display:block;color-scheme:light;
--_bg:var(--pollcast-bg,light-dark(#fff,#1b1d21));--_fg:var(--pollcast-fg,light-dark(#1f2328,#e8eaed));
--_muted:var(--pollcast-muted,light-dark(#57606a,#a9b1bb));--_accent:var(--pollcast-accent,light-dark(#0b57d0,#8ab4f8));
--_on-accent:var(--pollcast-on-accent,light-dark(#fff,#0b1b33));--_border:var(--pollcast-border,light-dark(#d0d7de,#3c4048));
--_track:var(--pollcast-track,light-dark(#e6eaef,#30343b));--_err:var(--pollcast-error,light-dark(#b42318,#ffb4ab));
--_radius:var(--pollcast-radius,12px);--_font:var(--pollcast-font,system-ui,sans-serif)}
:host([data-theme=dark]){color-scheme:dark}:host([data-theme=auto]){color-scheme:light dark}
*{box-sizing:border-box}
.pc{font:16px/1.45 var(--_font);color:var(--_fg);background:var(--_bg);border:1px solid var(--_border);
border-radius:var(--_radius);padding:20px;max-width:40rem;min-width:0;text-align:start;overflow-wrap:anywhere}
fieldset{border:0;margin:0;padding:0;min-width:0}
.q{display:block;font-size:1.15em;font-weight:650;line-height:1.3;margin:0 0 14px;padding:0}
.q:focus{outline:none}
.opt{display:flex;align-items:center;gap:10px;min-height:44px;padding:9px 12px;margin:0 0 8px;border:1px solid var(--_border);
border-radius:8px;cursor:pointer}
.opt:hover{border-color:var(--_muted)}
.opt:has(input:checked){border-color:var(--_accent);box-shadow:inset 0 0 0 1px var(--_accent)}
.opt:has(input:disabled){cursor:default;opacity:.75}
input{flex:none;width:18px;height:18px;margin:0;accent-color:var(--_accent)}
.hint{margin:0 0 10px;color:var(--_muted);font-size:.875em}
.row{display:flex;flex-wrap:wrap;align-items:center;gap:8px 16px;margin-top:6px}
button{font:inherit;font-weight:600;border-radius:8px;cursor:pointer;min-height:44px;padding:9px 20px}
.vote{background:var(--_accent);color:var(--_on-accent);border:1px solid var(--_accent)}
.link{background:none;border:0;padding:9px 2px;color:var(--_accent);text-decoration:underline;font-weight:500}
button:disabled{cursor:default;opacity:.6}
.opt:has(input:focus-visible),input:focus-visible,button:focus-visible{outline:3px solid var(--_accent);outline-offset:2px}
ul{list-style:none;margin:0;padding:0}
li{margin:0 0 12px}
.lab{display:flex;justify-content:space-between;gap:12px;margin-bottom:4px}
.pct{font-weight:650;font-variant-numeric:tabular-nums;white-space:nowrap}
.mine .name::after{content:" \\2713";color:var(--_accent)}
.track{height:10px;border-radius:5px;background:var(--_track);overflow:hidden}
.fill{height:100%;width:0;border-radius:5px;background:var(--_accent);transition:width .45s ease}
.cnt{font-size:.8125em;color:var(--_muted);margin-top:2px;font-variant-numeric:tabular-nums}
.msg{margin:12px 0 0;font-weight:550}
.msg:empty{margin:0}
.err{color:var(--_err)}
.foot{display:flex;flex-wrap:wrap;gap:4px 12px;margin:14px 0 0;color:var(--_muted);font-size:.8125em}
.live::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;background:#1a7f37;margin-inline-end:6px}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:360px){.pc{padding:14px}}
@media (prefers-reduced-motion:reduce){.fill{transition:none}}`;

const GONE = 'This poll does not exist or was deleted.';
const THANKS = 'Thank you for voting!';
const HIDDEN = {
  after_vote: 'Vote to see the results.',
  after_close: 'Results will be shown when the poll closes.',
  owner: 'The results of this poll are private.',
};

// h builds an element. Strings become text nodes: never HTML.
const h = (tag, props, ...kids) => {
  const el = D.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false) el.append(c);
  return el;
};

// localStorage may be blocked: ids then last a page long
const recall = (k) => { try { return localStorage.getItem(k); } catch { return null; } };
const keep = (k, v) => { try { localStorage.setItem(k, v); } catch { /* blocked */ } };
const rid = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
let pageVoter = '';
const deviceId = () => {
  let id = recall('pollcast:voter') || pageVoter;
  if (!id) {
    id = pageVoter = 'd-' + rid();
    keep('pollcast:voter', id);
  }
  return id;
};
const nf = new Intl.NumberFormat();
const count = (n, one, many) => nf.format(n) + ' ' + (n === 1 ? one : many);
const votes = (n) => count(n, 'vote', 'votes');
const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const parse = (s) => { try { return JSON.parse(s); } catch { return null; } };

let sheet = null;
// Constructed sheets pass host pages' CSP; else <style>.
const style = (root) => {
  try {
    if (!sheet) (sheet = new CSSStyleSheet()).replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    root.append(h('style', null, CSS));
  }
};

class Widget {
  constructor(el, o) {
    this.id = String(o.poll);
    this.api = String(o.api || API).replace(/\/+$/, '');
    this.token = o.voter || '';
    this.host = h('div', { 'data-pollcast': this.id, 'data-theme': ['dark', 'auto'].includes(o.theme) ? o.theme : 'light' });
    el.replaceChildren(this.host);
    this.root = this.host.attachShadow({ mode: 'open' });
    style(this.root);
    this.key = 'pollcast:voted:' + this.id;
    this.mine = this.token ? null : parse(recall(this.key));
    this.sel = new Set();
    this.tries = 0;
    this.gen = 0;
    this.wsFails = 0;
    this.main = h('div');
    this.msgEl = h('p', { class: 'msg', role: 'status' });
    this.foot = h('p', { class: 'foot' });
    this.sr = h('div', { class: 'sr', 'aria-live': 'polite' });
    this.root.append(h('div', { class: 'pc', part: 'poll' }, this.main, this.msgEl, this.foot, this.sr));
    this.render();
    this.load();
  }

  url(path) {
    return this.api + '/v1/polls/' + encodeURIComponent(this.id) + path;
  }

  emit(name, detail) {
    this.host.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail }));
  }

  say(text, err) {
    this.msgEl.textContent = text || '';
    this.msgEl.classList.toggle('err', !!err);
  }

  // load reads the poll; a read overtaken by another or a live "poll" is dropped.
  async load() {
    const gen = ++this.gen;
    let r;
    let body;
    try {
      r = await fetch(this.url(''), { credentials: 'omit' });
      body = parse(await r.text()) || {};
    } catch {
      r = null;
    }
    if (this.dead || gen !== this.gen) return;
    if (r && r.ok) {
      this.fresh = true; // a WebSocket failing now is blocked
      this.setPoll(body);
      this.connect();
      return;
    }
    const code = r && body.code;
    if (code === 'not_found') this.gone(GONE);
    else if (code === 'origin_not_allowed') this.gone('This poll cannot be shown on this website.');
    else {
      if (!this.poll) this.say('This poll could not be loaded right now.', true);
      this.retry(() => this.load());
    }
  }

  gone(text) {
    this.destroy(true);
    this.main.replaceChildren();
    this.foot.replaceChildren();
    this.say(text, true);
  }

  voter() {
    return this.token || (this.poll && this.poll.dedupe === 'token' ? '' : deviceId());
  }

  // status: what the poll means for this visitor, in plain words.
  status() {
    const p = this.poll;
    if (p.status === 'closed') this.say('This poll is closed.');
    else if (p.status === 'scheduled') this.say(p.opens_at ? 'This poll opens ' + when(p.opens_at) + '.' : 'This poll is not open yet.');
    else if (this.mine) this.say(this.thanked ? THANKS : 'You have already voted in this poll.');
    else if (p.dedupe === 'token' && !this.token) this.say('Sign in on this website to vote.');
    else this.say('');
  }

  render() {
    const p = this.poll;
    if (this.dead) return;
    if (!p) {
      this.main.replaceChildren(h('p', { class: 'hint' }, 'Loading poll…'));
      return;
    }
    this.bars = null;
    this.showsForm = !this.mine && p.status !== 'closed' && !this.peek;
    this.main.replaceChildren(this.showsForm ? this.form() : this.results());
    this.update();
  }

  form() {
    const p = this.poll;
    const multi = p.kind === 'multiple';
    const off = p.status !== 'open' || (p.dedupe === 'token' && !this.token);
    const full = multi && this.sel.size >= p.max_choices;
    const opts = p.options.map((o) => h('label', { class: 'opt' },
      h('input', {
        type: multi ? 'checkbox' : 'radio', name: 'o', value: o.id, checked: this.sel.has(o.id),
        disabled: off || (full && !this.sel.has(o.id)), onchange: () => this.pick(),
      }),
      h('span', null, o.label)));
    return h('form', { onsubmit: (e) => { e.preventDefault(); this.vote(); } },
      h('fieldset', null,
        h('legend', { class: 'q' }, p.question),
        multi && p.max_choices < p.options.length ? h('p', { class: 'hint' }, 'Choose up to ' + p.max_choices + '.') : null,
        opts),
      h('div', { class: 'row' },
        h('button', { class: 'vote', type: 'submit', disabled: off }, 'Vote'),
        p.results_visibility === 'always'
          ? h('button', { class: 'link', type: 'button', onclick: () => this.toggle(true) }, 'See results') : null));
  }

  toggle(peek) {
    this.peek = peek;
    this.render();
    const f = this.root.querySelector(peek ? '.q' : 'input:not(:disabled)');
    if (f) f.focus();
  }

  pick() {
    this.sel = new Set([...this.root.querySelectorAll('input:checked')].map((i) => i.value));
    if (this.poll.kind === 'multiple') {
      const full = this.sel.size >= this.poll.max_choices;
      for (const i of this.root.querySelectorAll('input')) i.disabled = full && !i.checked;
    }
    if (this.msgEl.classList.contains('err')) this.say('');
  }

  results() {
    const p = this.poll;
    const kids = [h('div', { class: 'q', tabindex: '-1' }, p.question)];
    if (this.hidden || !this.res) {
      let note = this.res ? '' : 'Loading results…';
      if (this.hidden) note = this.mine && p.results_visibility === 'after_vote' ? 'Results are hidden for now.' : HIDDEN[p.results_visibility] || '';
      kids.push(h('p', { class: 'hint' }, note));
    } else {
      this.bars = {};
      kids.push(h('ul', { 'aria-label': 'Results' }, p.options.map((o) => {
        const b = {
          fill: h('div', { class: 'fill' }), pct: h('span', { class: 'pct' }), cnt: h('div', { class: 'cnt' }),
        };
        b.li = h('li', { 'data-option': o.id, class: this.mine && this.mine.includes(o.id) ? 'mine' : null },
          h('div', { class: 'lab' }, h('span', { class: 'name' }, o.label), b.pct),
          h('div', { class: 'track', 'aria-hidden': 'true' }, b.fill), b.cnt);
        this.bars[o.id] = b;
        return b.li;
      })));
    }
    if (this.peek) kids.push(h('button', { class: 'link', type: 'button', onclick: () => this.toggle(false) }, 'Back to vote'));
    return h('div', null, kids);
  }

  // update moves the bars to the newest results.
  update() {
    const r = this.res;
    const total = r ? r.total : 0;
    for (const o of this.bars && r ? r.options : []) {
      const b = this.bars[o.id];
      if (!b) continue;
      const pct = total ? Math.round((o.votes / total) * 100) : 0;
      b.fill.style.width = pct + '%';
      b.pct.textContent = pct + '%';
      b.cnt.textContent = votes(o.votes);
      b.li.dataset.votes = o.votes;
    }
    this.footer();
  }

  footer() {
    const p = this.poll;
    const kids = [];
    if (this.res && !this.hidden) kids.push(h('span', { class: 'total' }, votes(this.res.total)));
    if (p.status === 'open' && p.closes_at) kids.push(h('span', null, 'Closes ' + when(p.closes_at)));
    if (this.live && p.status === 'open') kids.push(h('span', { class: 'live' }, 'Live'));
    this.foot.replaceChildren(...kids);
  }

  // announce reads the results out, once a minute at most.
  announce(force) {
    const r = this.res;
    if (!r || this.hidden || !this.poll || (!this.mine && !this.peek && this.poll.status !== 'closed')) return;
    const now = Date.now();
    if (!force && now - (this.said || 0) < 60000) return;
    this.said = now;
    const label = Object.fromEntries(this.poll.options.map((o) => [o.id, o.label]));
    this.sr.textContent = 'Results: ' + r.options.map((o) => label[o.id] + ' ' + votes(o.votes)).join(', ') +
      '. ' + votes(r.total) + ' in total.';
  }

  async vote() {
    const opts = [...this.sel];
    if (!opts.length) {
      this.say('Choose an option first.', true);
      return;
    }
    if (this.busy) return;
    const sig = opts.join();
    if (this.idemFor !== sig) [this.idem, this.idemFor] = [rid(), sig];
    // aria-disabled keeps the keyboard focus on the button
    const btn = this.root.querySelector('.vote');
    const busy = (on) => {
      this.busy = on;
      if (!btn) return;
      btn.textContent = on ? 'Sending…' : 'Vote';
      if (on) btn.setAttribute('aria-disabled', 'true');
      else btn.removeAttribute('aria-disabled');
    };
    busy(true);
    this.say('');
    let r;
    let body = {};
    try {
      r = await fetch(this.url('/votes'), {
        method: 'POST', credentials: 'omit', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ options: opts, voter: this.voter(), idempotency_key: this.idem, referrer: location.host }),
      });
      body = parse(await r.text()) || {};
    } catch {
      r = null;
    }
    busy(false);
    const code = r ? (r.ok ? 'ok' : body.code) : 'network';
    if (code === 'ok' || code === 'already_voted') {
      this.mine = code === 'ok' ? opts : [];
      this.thanked = code === 'ok';
      if (!this.token) keep(this.key, JSON.stringify(this.mine));
      this.peek = false;
      this.render();
      this.status();
      const q = this.root.querySelector('.q');
      if (q) q.focus();
      if (code === 'ok') this.emit('pollcast:vote', { poll: this.id, options: opts, vote_id: body.vote_id });
      if (this.poll.results_visibility === 'after_vote') this.reconnect();
      else this.announce(true);
    } else if (code === 'poll_closed') {
      this.say('This poll is not open.');
      this.load();
    } else if (code === 'rate_limited') {
      const s = Math.max(1, parseInt(r.headers.get('Retry-After'), 10) || 5);
      this.say('Too many votes from your network right now. Please try again in ' + count(s, 'second', 'seconds') + '.', true);
    } else if (code === 'invalid_voter_token') this.say('Sign in on this website to vote.', true);
    else if (code === 'invalid_option') {
      this.say('These choices are not valid any more. Please choose again.', true);
      this.load();
    } else if (code === 'overloaded') this.say('Voting is very busy right now. Please try again in a moment.', true);
    else if (code === 'not_found') this.gone(GONE);
    else if (code === 'network') this.say('Your vote could not be sent. Check your connection and try again.', true);
    else this.say('Your vote could not be counted. Please try again.', true);
  }

  setPoll(p) {
    delete p.type;
    const shape = (q) => JSON.stringify([q.options, q.question, q.kind, q.max_choices, q.status]);
    const changed = !this.poll || shape(p) !== shape(this.poll);
    const vis = this.poll && this.poll.results_visibility !== p.results_visibility;
    this.poll = p;
    if (this.sel.size) this.sel = new Set([...this.sel].filter((id) => p.options.some((o) => o.id === id)));
    this.status();
    if (changed) this.render();
    if (vis) this.reconnect(); // the server decides anew what this viewer may see
  }

  onMessage(m) {
    if (!m || this.dead) return;
    this.tries = 0;
    if (m.type === 'results') {
      const again = this.hidden || !this.res;
      this.hidden = false;
      this.res = m;
      if (m.status !== this.poll.status) this.load(); // it changed before we joined
      if (again && !this.showsForm) this.render();
      else this.update();
      this.announce(false);
      this.emit('pollcast:results', { poll: this.id, results: m });
    } else if (m.type === 'hidden') {
      this.hidden = true;
      if (this.showsForm) this.footer();
      else this.render();
    } else if (m.type === 'poll') {
      this.gen++;
      if (m.deleted) this.gone(GONE);
      else this.setPoll(m);
    }
  }

  // connect follows the poll live over a WebSocket, or SSE where those fail.
  connect() {
    if (this.dead || this.conn) return;
    const url = this.url('/live?voter=' + encodeURIComponent(this.voter()));
    const lost = (opened) => {
      if (this.conn !== c) return;
      this.conn = null;
      this.setLive(false);
      if (!opened && this.fresh && ++this.wsFails >= 2 && W.EventSource) this.sse = true;
      this.fresh = false;
      this.retry(() => this.load()); // gone, changed or back
    };
    let c;
    if (!this.sse && W.WebSocket) {
      let opened = false;
      c = new WebSocket(url.replace(/^http/, 'ws'));
      c.onopen = () => {
        opened = true;
        this.wsFails = 0;
        this.setLive(true);
      };
      c.onmessage = (e) => this.onMessage(parse(e.data));
      c.onclose = () => lost(opened);
    } else if (W.EventSource) {
      c = new EventSource(url.replace('/live?', '/events?'));
      c.onopen = () => this.setLive(true);
      for (const t of ['results', 'hidden', 'poll']) c.addEventListener(t, (e) => this.onMessage(parse(e.data)));
      c.onerror = () => {
        c.close();
        lost(true);
      };
    } else return;
    this.conn = c;
  }

  setLive(on) {
    if (this.live === on) return;
    this.live = on;
    if (this.poll) this.footer();
  }

  drop() {
    const c = this.conn;
    this.conn = null;
    if (c) c.close();
  }

  reconnect() {
    this.drop();
    this.connect();
  }

  retry(fn) {
    clearTimeout(this.timer);
    const base = Math.min(30000, 500 * 2 ** Math.min(this.tries++, 6));
    this.timer = setTimeout(() => { if (!this.dead) fn(); }, Math.random() * base);
  }

  destroy(keep) {
    this.dead = true;
    clearTimeout(this.timer);
    this.drop();
    if (!keep) this.host.remove();
  }
}

const mount = (el, o) => {
  if (!el || !o || !o.poll) throw new TypeError('pollcast.mount(element, {poll: "ID"})');
  if (el.pollcastWidget) el.pollcastWidget.destroy();
  const w = new Widget(el, o);
  el.pollcastWidget = w;
  return { element: w.host, destroy: () => w.destroy() };
};

// scan mounts every <script data-poll> not mounted yet.
const scan = () => {
  for (const s of D.querySelectorAll('script[data-poll]')) {
    if (s.pollcastMounted || !s.src) continue;
    try {
      const sel = s.dataset.target;
      const t = sel ? D.querySelector(sel) : null;
      if (sel && !t) {
        if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', scan, { once: true });
        continue;
      }
      s.pollcastMounted = true;
      let el = t;
      if (!el) s.after(el = D.createElement('div'));
      mount(el, { poll: s.dataset.poll, voter: s.dataset.voter, theme: s.dataset.theme, api: new URL(s.src, location.href).origin });
    } catch (e) {
      s.pollcastMounted = true;
      console.error('pollcast:', e);
    }
  }
};

W.pollcast = { mount, scan, version: 1 };
scan();
})();
