/**
 * The dashboard page script (bundled for browsers by serve.ts). Watches one topic through the
 * client SDK (snapshot, then every event with its latency; numeric fields charted live), or a
 * collection (`batteryId:*`: one row per member, updated live), and lists
 * upstream sockets from the control API, unhealthy ones marked. All text goes through
 * textContent: topic data is untrusted.
 */
// The built client package (npm run build:client), served beside this script: the page runs
// what a user installs, not the sources. Types come from realtime-client.d.ts.
import { connect, type EventInfo, type RealtimeClient, type Subscription } from './realtime-client.js';
import { TopicChart } from './chart';
import { upstreamHealth } from './upstream-health';

interface PageConfig {
  websocketUrl: string;
  httpUrl: string | null;
  userId: string | null;
  token: string | null;
}

interface UpstreamRow {
  socketId: string;
  platformID: string;
  internalID: string;
  topic: string;
  status: string;
  isActive: boolean;
  countErr: number;
  lastHealthyAt: string | null;
  counters?: { messagesIn?: number };
}

const MAX_LOG_ROWS = 200;
const UPSTREAM_POLL_MS = 2000;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = (tag: string, text?: string, cls?: string) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};
const time = (ms?: number) => (ms ? new Date(ms).toLocaleTimeString(undefined, { hour12: false }) + '.' + String(ms % 1000).padStart(3, '0') : '—');

async function loadConfig(): Promise<PageConfig> {
  const r = await fetch('config.json', { cache: 'no-store' });
  if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
  return (await r.json()) as PageConfig;
}

async function main() {
  const cfg = await loadConfig();
  const httpBase = (cfg.httpUrl ?? location.origin).replace(/\/+$/, '');
  const authHeaders = (): Record<string, string> => (cfg.token ? { authorization: `Bearer ${cfg.token}` } : {});

  const client: RealtimeClient = connect(cfg.websocketUrl, {
    userId: cfg.userId ?? undefined,
    // Token refresh on reconnect: ask the server for a fresh one every time.
    token: cfg.token
      ? async () => {
          const fresh = await loadConfig();
          cfg.token = fresh.token;
          return fresh.token ?? '';
        }
      : undefined,
    pingIntervalMs: 60_000,
  });
  (window as unknown as { realtime: RealtimeClient }).realtime = client;

  // ---- connection state
  client.on('state', (s) => {
    $('state-dot').dataset.state = s.state;
    const extra = s.state === 'reconnecting' && s.delayMs !== undefined ? ` (attempt ${s.attempt}, in ${s.delayMs} ms)` : '';
    $('state').textContent = s.state + extra;
    document.body.dataset.state = s.state;
  });
  client.on('error', (e) => {
    $('errors').textContent = `${e.code}: ${e.message}`;
  });

  // ---- topic view
  let sub: Subscription | undefined;
  let events = 0;
  let latencySum = 0;
  const latest = $('latest');
  const chart = new TopicChart($('chart'));
  (window as unknown as { dashboardChart: TopicChart }).dashboardChart = chart;
  const chartMeta = () => {
    $('chart-meta').textContent = chart.points ? `${chart.points} points · ${chart.fields.join(', ')} · latency` : '';
    $('chart-empty').hidden = chart.points > 0;
  };

  const showLatest = (topic: string, data: unknown, seq: number, ts: number | undefined, latency: string) => {
    latest.className = '';
    latest.textContent = JSON.stringify(data, null, 2);
    latest.dataset.seq = String(seq);
    void latest.offsetWidth; // restart the flash animation
    latest.classList.add('flash');
    $('cur-topic').textContent = topic;
    $('cur-seq').textContent = String(seq);
    $('cur-time').textContent = time(ts);
    $('cur-latency').textContent = latency;
  };

  // Members of the watched topic: the presence answer, asked again on join/leave (PRESENCE_TOPICS)
  // and on a timer (topics without join/leave events, or past the member cap).
  let membersTopic = '';
  const showMembers = async () => {
    const topic = membersTopic;
    if (!topic) return;
    try {
      const p = await client.presence(topic);
      if (topic !== membersTopic) return;
      $('members-count').textContent = `${p.count.users} users · ${p.count.connections} connections${p.truncated ? ' (list cut)' : ''}`;
      $('members').replaceChildren(...p.users.map((u) => el('li', u.connections > 1 ? `${u.userId} (${u.connections} connections)` : u.userId)));
    } catch (e) {
      $('members-count').textContent = `unavailable: ${(e as Error).message}`;
    }
  };
  client.on('join', (c) => void (c.topic === membersTopic && showMembers()));
  client.on('leave', (c) => void (c.topic === membersTopic && showMembers()));
  setInterval(() => void showMembers(), 10_000);

  const watch = (topic: string) => {
    topic = topic.trim();
    if (!topic) return;
    sub?.unsubscribe();
    membersTopic = topic;
    $('members').replaceChildren();
    $('members-count').textContent = '';
    events = 0;
    latencySum = 0;
    $('events').replaceChildren();
    $('ev-count').textContent = '0';
    $('ev-dups').textContent = '0';
    $('ev-avg').textContent = '—';
    $('errors').textContent = '';
    chart.reset();
    chartMeta();
    latest.className = 'empty';
    latest.textContent = `waiting for ${topic}…`;
    delete latest.dataset.seq;
    $<HTMLInputElement>('topic-input').value = topic;
    $('cur-topic').textContent = topic;
    const u = new URL(location.href);
    u.searchParams.set('topic', topic);
    history.replaceState(null, '', u);
    $('members').replaceChildren();
    $('members-meta').textContent = '';
    const collection = topic.endsWith(':*') && topic.length > 2;
    $('members-panel').hidden = !collection;
    latest.hidden = collection;
    const onEvent = (data: unknown, info: EventInfo) => {
      const lat = info.latencyMs ?? (info.ts ? info.receivedAt - info.ts : undefined);
      if (collection) {
        memberRow(info.topic, data, info.seq, info.ts);
        $('cur-seq').textContent = `${info.topic} @ ${info.seq}`;
        $('cur-time').textContent = time(info.ts);
        $('cur-latency').textContent = lat === undefined ? '—' : `${lat} ms`;
      } else {
        showLatest(topic, data, info.seq, info.ts, lat === undefined ? '—' : `${lat} ms`);
        chart.add(info.ts ?? info.receivedAt, data, lat);
        chartMeta();
      }
      events += 1;
      if (lat !== undefined) latencySum += lat;
      $('ev-count').textContent = String(events);
      $('ev-dups').textContent = String(client.duplicates(topic));
      $('ev-avg').textContent = lat === undefined ? '—' : `${(latencySum / events).toFixed(1)} ms`;
      const tr = document.createElement('tr');
      const data1 = JSON.stringify(data);
      tr.append(
        el('td', collection ? `${info.topic} ${info.seq}` : String(info.seq), 'num'),
        el('td', time(info.receivedAt)),
        el('td', lat === undefined ? '—' : `${lat} ms`, 'num'),
        el('td', data1.length > 160 ? data1.slice(0, 157) + '…' : data1),
      );
      const body = $('events');
      body.prepend(tr);
      while (body.childElementCount > MAX_LOG_ROWS) body.lastElementChild!.remove();
    };
    const onError = (e: { code: string; message: string }) => ($('errors').textContent = `${e.code}: ${e.message}`);
    if (collection) {
      sub = client.subscribe(
        topic as `${string}:*`,
        (members, info) => {
          for (const [member, m] of Object.entries(members)) memberRow(member, m.truncated ? '(too large to show)' : m.data, m.seq, m.ts);
          $('members-meta').textContent =
            `${$('members').childElementCount} members` + (info.truncated ? ' — the collection has more members than the server sends (COLLECTION_MAX_MEMBERS)' : '');
        },
        onEvent,
        { onError },
      );
      return;
    }
    sub = client.subscribe(
      topic,
      (data, info) => {
        showLatest(topic, data, info.seq, info.ts, info.reset ? 'reset snapshot' : 'snapshot');
        chart.add(info.ts ?? Date.now(), data);
        chartMeta();
        void showMembers();
        if (info.seq === 0 && data === null) {
          latest.className = 'empty';
          latest.textContent = `${topic} has no data yet (seq 0); publish something or wait for the upstream.`;
        }
      },
      onEvent,
      { onError },
    );
  };

  /** A collection member's row, created in topic order on first sight and updated in place. */
  const memberRow = (member: string, data: unknown, seq: number, ts: number | undefined) => {
    const body = $('members');
    let tr = Array.from(body.children).find((r) => (r as HTMLElement).dataset.topic === member) as HTMLElement | undefined;
    if (!tr) {
      tr = el('tr');
      tr.dataset.topic = member;
      const after = Array.from(body.children).find((r) => ((r as HTMLElement).dataset.topic ?? '') > member);
      body.insertBefore(tr, after ?? null);
    }
    const json = JSON.stringify(data);
    tr.dataset.seq = String(seq);
    tr.replaceChildren(el('td', member), el('td', String(seq), 'num'), el('td', time(ts)), el('td', json.length > 160 ? json.slice(0, 157) + '…' : json));
    tr.classList.remove('flash');
    void tr.offsetWidth; // restart the flash animation
    tr.classList.add('flash');
  };

  $('watch-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    watch($<HTMLInputElement>('topic-input').value);
  });

  $('publish-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!sub) return void ($('errors').textContent = 'watch a topic first');
    let data: unknown;
    try {
      data = JSON.parse($<HTMLTextAreaElement>('publish-data').value);
    } catch {
      return void ($('errors').textContent = 'publish: the data is not valid JSON');
    }
    if ($<HTMLInputElement>('publish-socket').checked) {
      // Over this page's own socket: the same write as POST /publish, answered with its seq.
      try {
        const { seq } = await client.publish(sub.topic, data);
        $('errors').textContent = `published from the socket at seq ${seq}`;
      } catch (err) {
        $('errors').textContent = `publish: ${(err as Error & { code?: string }).code ?? 'error'}: ${(err as Error).message}`;
      }
      return;
    }
    const r = await fetch(`${httpBase}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify({ topic: sub.topic, data }),
    });
    $('errors').textContent = r.ok ? '' : `publish: HTTP ${r.status} ${await r.text()}`;
  });

  // ---- upstreams view
  let upTimer: ReturnType<typeof setTimeout> | undefined;
  const loadUpstreams = async (): Promise<UpstreamRow[]> => {
    const r = await fetch(`${httpBase}/websockets`, { headers: authHeaders() });
    if (!r.ok) throw new Error(`GET /websockets: HTTP ${r.status}`);
    const body = (await r.json()) as { items?: UpstreamRow[] };
    return body.items ?? [];
  };
  const renderUpstreams = (rows: UpstreamRow[]) => {
    const body = $('upstreams');
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = el('td', 'no upstream sockets (start the demo: npm run demo)', 'empty');
      td.setAttribute('colspan', '10');
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    const now = Date.now();
    let unhealthy = 0;
    body.replaceChildren(
      ...rows.map((u) => {
        const tr = document.createElement('tr');
        tr.dataset.socketId = u.socketId;
        const health = upstreamHealth(u, now);
        if (health.unhealthy) {
          unhealthy += 1;
          tr.className = 'unhealthy';
          tr.title = health.reasons.join('; ');
        }
        const topic = el('td');
        const a = el('a', u.topic);
        a.addEventListener('click', () => {
          show('topic');
          watch(u.topic);
        });
        topic.append(a);
        const code = el('td');
        code.append(el('code', u.socketId.slice(0, 12)));
        tr.append(
          el('td', u.platformID),
          el('td', u.internalID),
          topic,
          el('td', u.status),
          el('td', String(u.isActive), u.isActive ? 'yes' : 'no'),
          el('td', String(u.countErr), u.countErr > 0 ? 'num bad' : 'num'),
          el('td', u.lastHealthyAt ?? '—'),
          el('td', String(u.counters?.messagesIn ?? 0), 'num'),
          code,
          el('td', health.lastHealthy, health.unhealthy ? 'bad' : 'dim'),
        );
        return tr;
      }),
    );
    const summary = $('up-summary');
    summary.textContent = unhealthy ? `${unhealthy} of ${rows.length} unhealthy` : `all ${rows.length} healthy`;
    summary.className = unhealthy ? 'badge bad' : 'badge ok';
  };
  const pollUpstreams = async () => {
    try {
      renderUpstreams(await loadUpstreams());
      $('up-updated').textContent = `updated ${time(Date.now())}`;
      $('up-errors').textContent = '';
    } catch (e) {
      $('up-errors').textContent = (e as Error).message;
    }
    if (!$('view-upstreams').hidden) upTimer = setTimeout(pollUpstreams, UPSTREAM_POLL_MS);
  };

  const show = (view: 'topic' | 'upstreams') => {
    for (const v of ['topic', 'upstreams'] as const) {
      $(`view-${v}`).hidden = v !== view;
      $(`tab-${v}`).setAttribute('aria-selected', String(v === view));
    }
    const u = new URL(location.href);
    if (view === 'upstreams') u.searchParams.set('view', 'upstreams');
    else u.searchParams.delete('view');
    history.replaceState(null, '', u);
    clearTimeout(upTimer);
    if (view === 'upstreams') void pollUpstreams();
  };
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('nav button'))) {
    b.addEventListener('click', () => show(b.dataset.view as 'topic' | 'upstreams'));
  }

  // Quick links to the topics upstreams write (the demo's), so a newcomer has something to click.
  loadUpstreams()
    .then((rows) => {
      const box = $('demo-topics');
      const topics = [...new Set(rows.map((r) => r.topic))].slice(0, 8);
      if (topics.length) box.append('try: ');
      for (const t of topics) {
        const a = el('a', t);
        a.style.marginRight = '8px';
        a.addEventListener('click', () => watch(t));
        box.append(a);
      }
    })
    .catch(() => {});

  const params = new URLSearchParams(location.search);
  if (params.get('view') === 'upstreams') show('upstreams');
  const initial = params.get('topic');
  if (initial) watch(initial);
}

main().catch((e) => {
  const box = document.getElementById('errors');
  if (box) box.textContent = `dashboard failed to start: ${(e as Error).message}`;
});
