// The console page: polls GET /api/model and draws it. Plain DOM, no
// framework, no build step. Everything from the model is put on the page as
// text (never as HTML): span attributes come from whoever POSTs to /v1/traces.
/* global document, window, fetch, setInterval, setTimeout */
'use strict';

/** h makes an element with attributes and children (strings become text nodes). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

function fixed(n) {
  return n >= 10 ? n.toFixed(0) : n.toFixed(1);
}

function rate(label, cls, r) {
  return h('span', { class: cls }, `${label} ${fixed(r.perSecond)}/s (${r.total} total)`);
}

function formatDuration(seconds) {
  if (seconds <= 0) return 'expired';
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const ss = Math.floor(seconds % 60);
  const two = (x) => String(x).padStart(2, '0');
  return `${d > 0 ? `${d}d ` : ''}${two(hh)}:${two(mm)}:${two(ss)}`;
}

function time(iso) {
  return new Date(iso).toLocaleTimeString('en-GB', { hour12: false });
}

function shortSerial(s) {
  return s && s.length > 16 ? `${s.slice(0, 16)}…` : (s ?? '—');
}

function drawEdges(model) {
  const list = document.getElementById('edges');
  const items = model.edges
    .slice()
    .sort((a, b) => (a.from === null) - (b.from === null) || a.to.localeCompare(b.to))
    .map((e) => {
      const from = e.from ?? (e.caller === 'none' ? 'unauthenticated caller' : 'unknown caller');
      return h(
        'li',
        { class: e.deny.total > 0 ? 'has-deny' : '', 'data-edge': `${e.from ?? '?'}->${e.to}` },
        h('span', { class: 'path' }, `${from} → ${e.to}`),
        h(
          'span',
          null,
          'caller ',
          h('span', { class: 'id' }, e.caller === 'none' ? 'none (no verified SPIFFE ID)' : e.caller),
        ),
        h('span', null, `rule ${e.rules.join(' | ') || '—'}`),
        h('span', null, rate('allow', 'allow', e.allow), ' · ', rate('deny', 'deny', e.deny)),
        h('span', { class: 'source' }, `from ${e.source}`),
      );
    });
  list.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, 'No calls yet.')]));
}

function timeline(history) {
  if (!history.length) return h('div', { class: 'timeline', 'aria-hidden': 'true' });
  const now = Date.now();
  const start = Math.min(new Date(history[0].at).getTime(), now - 60_000);
  const span = Math.max(1, now - start);
  return h(
    'div',
    { class: 'timeline', 'aria-hidden': 'true' },
    history.map((ev) =>
      h('span', {
        class: `mark ${ev.kind}`,
        style: `left: calc(${(((new Date(ev.at).getTime() - start) / span) * 100).toFixed(2)}% - 2px)`,
        title: `${ev.kind} ${time(ev.at)} serial ${ev.serial}`,
      }),
    ),
  );
}

function drawServices(model) {
  const box = document.getElementById('services');
  box.replaceChildren(
    ...model.services.map((s) => {
      const id = s.identity;
      const rows = [];
      const row = (k, ...v) => rows.push(h('dt', null, k), h('dd', null, ...v));
      row(
        'state',
        !s.reachable
          ? h('span', { class: 'badge bad' }, `unreachable (${s.error})`)
          : s.ready
            ? h('span', { class: 'badge' }, 'ready')
            : h('span', { class: 'badge bad' }, 'not ready'),
        Object.entries(s.readyReasons).map(([k, v]) => h('div', { class: 'source' }, `${k}: ${v}`)),
      );
      if (id) {
        row(
          'identity mode',
          h('span', { class: 'badge mode' }, id.mode),
          ' ',
          h('span', { class: 'source' }, id.source),
        );
        row('SPIFFE ID', h('span', { class: 'id' }, id.spiffeId ?? '—'));
        row('SVID serial', h('span', { class: 'id', title: id.serial ?? '' }, shortSerial(id.serial)));
        row(
          'expires in',
          id.notAfter
            ? h(
                'span',
                { class: 'countdown', 'data-not-after': id.notAfter, 'aria-label': `${s.name} SVID expires in` },
                '…',
              )
            : '—',
          id.notAfter ? h('span', { class: 'source' }, ` (not after ${time(id.notAfter)})`) : '',
        );
        row(
          'rotations',
          h('span', { 'data-rotations': s.name }, String(id.rotations)),
          timeline(id.history),
          h(
            'ul',
            { class: 'rotations', 'aria-label': `${s.name} rotations` },
            id.history
              .slice()
              .reverse()
              .map((ev) => h('li', null, `${time(ev.at)} ${ev.kind} serial ${shortSerial(ev.serial)}`)),
          ),
        );
        row(
          'trust roots',
          h(
            'ul',
            null,
            Object.entries(id.trustRoots).map(([td, roots]) =>
              h(
                'li',
                null,
                h('strong', null, td),
                `: ${roots.length} root${roots.length === 1 ? '' : 's'} `,
                roots.map((r) =>
                  h('div', { class: 'source' }, `${r.subject || '(no subject)'} · sha256 ${r.sha256.slice(0, 23)}…`),
                ),
              ),
            ),
          ),
        );
        if (id.lastError)
          row('last refusal', h('span', { class: 'deny' }, `${id.lastError.code}: ${id.lastError.message}`));
      } else {
        row('identity', h('span', { class: 'empty' }, 'no /identity answer'));
      }
      row('TLS handshakes refused', rate('', s.handshakeFailures.total > 0 ? 'deny' : '', s.handshakeFailures));
      return h(
        'article',
        { class: 'card', 'aria-label': `service ${s.name}` },
        h('h3', null, s.name),
        h('dl', null, rows),
        h('p', { class: 'source' }, `from ${s.sources.identity}, ${s.sources.ready}, ${s.sources.metrics}`),
      );
    }),
  );
  tickCountdowns();
}

function tickCountdowns() {
  for (const el of document.querySelectorAll('[data-not-after]')) {
    const left = (new Date(el.getAttribute('data-not-after')).getTime() - Date.now()) / 1000;
    el.textContent = formatDuration(left);
    el.classList.toggle('expired', left <= 0);
    el.classList.toggle('low', left > 0 && left < 60);
  }
}

function drawBreakers(model) {
  const list = document.getElementById('breakers');
  const items = model.breakers.map((b) =>
    h(
      'li',
      null,
      `${b.service} → ${b.breaker}: `,
      h('span', { class: `state-${b.state}` }, b.state),
      h('span', { class: 'source' }, `  from ${b.source}`),
    ),
  );
  list.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, 'No breakers reported.')]));
}

// The toggles are drawn once (and again only if the set changes), so a
// refresh never takes the keyboard focus away from a button or a field.
let drawnToggles = '';
async function runToggle(t, form, button) {
  const body = {};
  for (const input of t.inputs) body[input.name] = Number(form.elements[input.name].value);
  button.disabled = true;
  const out = form.querySelector('.outcome');
  out.textContent = 'Running…';
  try {
    const res = await fetch(`/api/toggles/${encodeURIComponent(t.name)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await res.json();
    out.textContent = res.ok ? answer.message : `${answer.code}: ${answer.message}`;
    out.classList.toggle('failed', !res.ok);
  } catch (err) {
    out.textContent = `the console did not answer: ${err.message}`;
    out.classList.add('failed');
  } finally {
    button.disabled = false;
    void refresh();
  }
}

function drawToggles(model) {
  const key = JSON.stringify(model.toggles.map((t) => [t.name, t.available]));
  const box = document.getElementById('toggles');
  if (key !== drawnToggles) {
    drawnToggles = key;
    box.replaceChildren(
      ...model.toggles.map((t) => {
        const available = t.available === true;
        const form = h(
          'form',
          { 'data-toggle': t.name },
          h(
            'fieldset',
            null,
            h('legend', null, t.label),
            h('p', { id: `desc-${t.name}` }, available ? t.description : `${t.description} — ${t.available}`),
            t.inputs.map((i) =>
              h(
                'label',
                null,
                `${i.label} `,
                h('input', { type: 'number', name: i.name, min: i.min, max: i.max, step: i.step, value: i.value }),
              ),
            ),
            h(
              'button',
              { type: 'submit', disabled: !available, 'aria-describedby': `desc-${t.name}` },
              available ? t.label : `${t.label} (not available)`,
            ),
            h('div', { class: 'outcome', role: 'status', 'aria-live': 'polite' }),
          ),
        );
        form.addEventListener('submit', (ev) => {
          ev.preventDefault();
          void runToggle(t, form, form.querySelector('button'));
        });
        return form;
      }),
    );
  }
  for (const t of model.toggles) {
    const out = box.querySelector(`form[data-toggle="${t.name}"] .outcome`);
    if (out && t.last && out.textContent !== 'Running…') {
      out.textContent = `${time(t.last.at)} ${t.last.message}`;
      out.classList.toggle('failed', !t.last.ok);
    }
  }
}

function peerOf(span) {
  const a = span.attributes;
  if (span.kind === 'server') return a['spiffe.peer.id'] ?? null;
  if (span.kind === 'client') return a['spiffe.server.id'] ?? null;
  return null;
}

// Traces are redrawn only when one arrives or grows, so a reader's place stays put.
let drawnTraces = '';
function drawTraces(model) {
  document.getElementById('trace-source').textContent = `From ${model.traceSource}.`;
  const key = JSON.stringify(model.traces.map((t) => [t.traceId, t.spans.length]));
  if (key === drawnTraces) return;
  drawnTraces = key;
  const box = document.getElementById('traces');
  if (!model.traces.length) {
    box.replaceChildren(
      h(
        'p',
        { class: 'empty' },
        'No spans received yet: the services export them when OTEL_EXPORTER_OTLP_ENDPOINT points here.',
      ),
    );
    return;
  }
  box.replaceChildren(
    ...model.traces.map((t) => {
      const root = t.spans.find((s) => s.parentSpanId === null) ?? t.spans[0];
      const hops = t.spans.filter((s) => s.kind === 'server' || s.kind === 'client');
      const denied = t.spans.some((s) => s.attributes['spiffe.authz.decision'] === 'deny');
      return h(
        'article',
        { class: 'trace', 'aria-label': `trace ${t.traceId}` },
        h(
          'h3',
          null,
          denied ? h('span', { class: 'deny' }, 'denied · ') : '',
          `${root ? `${root.service}: ${root.name}` : t.traceId} `,
          h(
            'span',
            { class: 'source' },
            `trace ${t.traceId.slice(0, 16)} · ${t.spans.length} spans · ${time(new Date(root?.start ?? t.receivedAt).toISOString())}`,
          ),
        ),
        h(
          'table',
          null,
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['service', 'span', 'peer identity', 'authorization', 'TLS', 'ms'].map((x) => h('th', null, x)),
            ),
          ),
          h(
            'tbody',
            null,
            hops.map((s) => {
              const a = s.attributes;
              const decision = a['spiffe.authz.decision'];
              return h(
                'tr',
                null,
                h('td', null, `${s.service} (${s.kind})`),
                h('td', null, s.name),
                h('td', { class: 'id' }, peerOf(s) ?? '—'),
                h(
                  'td',
                  null,
                  decision ? h('span', { class: decision === 'allow' ? 'allow' : 'deny' }, String(decision)) : '',
                  a['spiffe.authz.rule'] ? ` ${a['spiffe.authz.rule']}` : '',
                  a['spiffe.authz.reason'] ? ` (${a['spiffe.authz.reason']})` : '',
                ),
                h(
                  'td',
                  null,
                  [
                    a['tls.protocol.version'],
                    a['tls.group'],
                    a['tls.cipher'],
                    a['tls.resumed'] === true ? 'resumed' : '',
                  ]
                    .filter((x) => x !== undefined && x !== null && x !== '')
                    .join(' · '),
                ),
                h('td', null, s.durationMs.toFixed(1)),
              );
            }),
          ),
        ),
      );
    }),
  );
}

let lastOk = 0;
async function refresh() {
  const status = document.getElementById('status');
  try {
    const res = await fetch('/api/model', { cache: 'no-store' });
    const model = await res.json();
    drawEdges(model);
    drawServices(model);
    drawBreakers(model);
    drawToggles(model);
    drawTraces(model);
    lastOk = Date.now();
    status.textContent = `${model.mode ? `${model.mode} mode · ` : ''}updated ${time(model.generatedAt)} · ${model.services.length} services read every ${model.pollMs} ms`;
    return model.pollMs;
  } catch (err) {
    status.textContent = `console unreachable since ${lastOk ? time(new Date(lastOk).toISOString()) : 'start'}: ${err.message}`;
    return 2000;
  }
}

async function loop() {
  const next = await refresh();
  setTimeout(loop, next);
}

setInterval(tickCountdowns, 1000);
window.addEventListener('DOMContentLoaded', () => {
  void loop();
});
