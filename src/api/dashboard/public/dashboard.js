/**
 * The live dashboard. Sign-in: an application token from the URL fragment (#token=ds_...,
 * which browsers never send to the server) or from the form is exchanged at
 * POST /api/v1/authenticate for an auth_token, kept in sessionStorage only; the
 * application token itself is not kept. Then GET /api/v1/dashboard every 2 s; a 401 goes
 * back to the form.
 *
 * Chart and ChartGeo are the globals of the UMD builds loaded before this module.
 * Decimal amounts stay the server's strings: charts plot Number(text) for bar heights
 * only, tables and tooltips show the exact text, totals are summed by ClickHouse.
 */
/* global Chart, ChartGeo */

const AUTH_KEY = 'data-streamer.auth_token';
const POLL_MS = 2000;
const THROUGHPUT_POINTS = 150;
const COLORS = { offline: '#9aa5b1', attached: '#e0a526', online: '#2f9e5b' };
const SERIES = ['#2b6cb0', '#dd6b20', '#38a169', '#805ad5', '#d53f8c', '#319795'];

const $ = (id) => document.getElementById(id);
const count = new Intl.NumberFormat('en-US');
const rate = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 });

let timer;
let charts;

// ---- sign-in ------------------------------------------------------------------------

function showSignIn(message) {
  clearTimeout(timer);
  sessionStorage.removeItem(AUTH_KEY);
  $('dashboard').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message ?? '';
  $('connection').textContent = 'not signed in';
  $('organisation').textContent = '';
  $('token-input').focus();
}

async function signIn(applicationToken) {
  const response = await fetch('/api/v1/authenticate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ application_token: applicationToken }),
  });
  if (!response.ok) {
    showSignIn(
      response.status === 401 ? 'That token is invalid or revoked.' : `Sign-in failed (${response.status}).`,
    );
    return;
  }
  const { auth_token } = await response.json();
  sessionStorage.setItem(AUTH_KEY, auth_token);
  startPolling();
}

function startPolling() {
  $('sign-in').hidden = true;
  $('dashboard').hidden = false;
  $('sign-out').hidden = false;
  poll();
}

async function poll() {
  clearTimeout(timer);
  const token = sessionStorage.getItem(AUTH_KEY);
  if (!token) return showSignIn();
  try {
    const response = await fetch('/api/v1/dashboard', { headers: { authorization: `Bearer ${token}` } });
    if (response.status === 401) return showSignIn('The session has ended; sign in again.');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await render(await response.json());
    $('connection').textContent = 'live';
  } catch (error) {
    $('connection').textContent = `retrying (${error.message})`;
  }
  timer = setTimeout(poll, POLL_MS);
}

// ---- charts -------------------------------------------------------------------------

async function createCharts() {
  const atlas = await (await fetch('/dashboard/vendor/countries-110m.json')).json();
  // Antarctica (010) has no roaming partners and takes a sixth of the map.
  const features = ChartGeo.topojson
    .feature(atlas, atlas.objects.countries)
    .features.filter((f) => f.id !== '010');
  const noLegend = { legend: { display: false } };
  const base = { responsive: true, maintainAspectRatio: false, animation: false };

  const throughput = new Chart($('throughput-chart'), {
    type: 'line',
    data: {
      labels: [],
      datasets: [
        { label: 'records/s', data: [], borderColor: SERIES[0], pointRadius: 0, tension: 0.2, fill: false },
      ],
    },
    options: {
      ...base,
      plugins: noLegend,
      scales: { y: { beginAtZero: true }, x: { ticks: { maxTicksLimit: 8 } } },
    },
  });

  const status = new Chart($('status-chart'), {
    type: 'doughnut',
    data: {
      labels: ['Offline', 'Attached', 'Online'],
      datasets: [{ data: [0, 0, 0], backgroundColor: [COLORS.offline, COLORS.attached, COLORS.online] }],
    },
    options: { ...base, plugins: noLegend },
  });

  const map = new Chart($('map-chart'), {
    type: 'choropleth',
    data: {
      labels: features.map((f) => f.properties.name),
      datasets: [
        { label: 'devices', outline: features, data: features.map((feature) => ({ feature, value: null })) },
      ],
    },
    options: {
      ...base,
      showOutline: true,
      plugins: noLegend,
      scales: {
        projection: { axis: 'x', projection: 'equalEarth' },
        color: {
          axis: 'x',
          interpolate: 'greens',
          missing: '#e9edf0',
          legend: { position: 'bottom-left', align: 'right' },
        },
      },
    },
  });

  const bars = (canvas, yTitle) =>
    new Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [] },
      options: {
        ...base,
        plugins: {
          tooltip: {
            // The exact text the server sent, not the plotted number.
            callbacks: {
              label: (item) => `${item.dataset.label}: ${item.dataset.exact[item.dataIndex] ?? '0'}`,
            },
          },
        },
        scales: { y: { beginAtZero: true, title: { display: true, text: yTitle } } },
      },
    });

  return {
    throughput,
    status,
    map,
    features,
    volume: bars($('volume-chart'), 'MB / SMS'),
    cost: bars($('cost-chart'), 'cost'),
  };
}

/** Bar datasets of usage rows: one per series key, one bar per ratezone. */
function barData(rows, seriesOf, amountOf) {
  const zones = [...new Map(rows.map((r) => [r.ratezone.id, r.ratezone.name])).entries()];
  const series = [...new Set(rows.map(seriesOf))];
  return {
    labels: zones.map(([, name]) => name),
    datasets: series.map((key, i) => {
      const exact = zones.map(([id]) => {
        const row = rows.find((r) => r.ratezone.id === id && seriesOf(r) === key);
        return row ? amountOf(row) : undefined;
      });
      return {
        label: key,
        exact,
        data: exact.map((text) => (text === undefined ? null : Number(text))),
        backgroundColor: SERIES[i % SERIES.length],
      };
    }),
  };
}

// ---- rendering ----------------------------------------------------------------------

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function fillRows(tbody, items, fill, empty, columns) {
  const rows = items.map((item) => {
    const tr = document.createElement('tr');
    fill(tr, item);
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    cell(tr, empty, 'muted').colSpan = columns;
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

const timeOf = (iso) => new Date(iso).toLocaleTimeString('en-GB');

async function render(snapshot) {
  charts ??= await createCharts();
  const { engine, devices, usage, streams } = snapshot;

  $('organisation').textContent = `organisation ${snapshot.organisation_id}`;
  $('processed').textContent = count.format(engine.processed_records);
  $('rate').textContent = engine.records_per_second === null ? '–' : rate.format(engine.records_per_second);
  $('event-time').textContent = engine.event_time ? engine.event_time.replace('T', ' ').slice(0, 19) : '–';
  $('devices-total').textContent = count.format(devices.total);
  $('updated').textContent = timeOf(snapshot.generated_at);

  const points = engine.throughput.slice(-THROUGHPUT_POINTS);
  charts.throughput.data.labels = points.map((p) => timeOf(p.at));
  charts.throughput.data.datasets[0].data = points.map((p) => p.records_per_second);
  charts.throughput.update('none');

  const { offline, attached, online } = devices.by_status;
  $('status-offline').textContent = count.format(offline);
  $('status-attached').textContent = count.format(attached);
  $('status-online').textContent = count.format(online);
  charts.status.data.datasets[0].data = [offline, attached, online];
  charts.status.update('none');

  // Map features are keyed by ISO 3166 numeric ids; the server adds them (iso_numeric).
  const byNumeric = new Map(devices.by_country.map((c) => [c.iso_numeric, c.devices]));
  const onMap = new Set(charts.features.map((f) => f.id));
  charts.map.data.datasets[0].data = charts.features.map((feature) => ({
    feature,
    value: byNumeric.get(feature.id) ?? null,
  }));
  charts.map.update('none');
  fillRows(
    $('countries'),
    devices.by_country.slice(0, 12),
    (tr, c) => {
      cell(tr, c.name);
      cell(tr, count.format(c.devices), 'num');
    },
    'No attached devices',
    2,
  );
  const offMap = devices.by_country.filter((c) => !onMap.has(c.iso_numeric));
  $('off-map').textContent =
    offMap.length === 0
      ? ''
      : `Too small for the map: ${offMap.map((c) => `${c.name} ${c.devices}`).join(', ')}`;

  const multiCurrency = new Set(usage.ratezones.map((r) => r.currency)).size > 1;
  charts.volume.data = barData(
    usage.ratezones,
    (r) => `${r.traffic_type.description} (${r.traffic_type.unit})${multiCurrency ? ` ${r.currency}` : ''}`,
    (r) => r.volume,
  );
  charts.volume.update('none');
  charts.cost.data = barData(
    usage.ratezones,
    (r) => `${r.traffic_type.description} ${r.currency}`,
    (r) => r.cost,
  );
  charts.cost.update('none');
  fillRows(
    $('usage-rows'),
    usage.ratezones,
    (tr, r) => {
      cell(tr, r.ratezone.name);
      cell(tr, r.traffic_type.description);
      cell(tr, count.format(BigInt(r.records)), 'num');
      cell(tr, `${r.volume} ${r.traffic_type.unit}`, 'num');
      cell(tr, `${r.cost} ${r.currency}`, 'num');
    },
    'No usage yet',
    5,
  );
  fillRows(
    $('usage-totals'),
    usage.totals,
    (tr, t) => {
      cell(tr, `Total ${t.currency}`);
      cell(tr, '');
      cell(tr, count.format(BigInt(t.records)), 'num');
      cell(tr, '');
      cell(tr, `${t.cost} ${t.currency}`, 'num');
    },
    '',
    5,
  );

  fillRows(
    $('stream-rows'),
    streams,
    (tr, s) => {
      tr.dataset.streamId = s.id;
      cell(tr, s.name);
      cell(tr, s.type);
      cell(tr, s.connection_type);
      const badge = document.createElement('span');
      badge.className = `badge ${s.status.description.toLowerCase()}`;
      badge.textContent = s.status.description;
      if (s.error) badge.title = `${s.error.code}: ${s.error.message}`;
      cell(tr, '').append(badge);
      cell(tr, count.format(s.lag.records), 'num');
      cell(tr, rate.format(s.lag.seconds), 'num');
      cell(tr, s.last_success_at ? timeOf(s.last_success_at) : 'never');
      cell(tr, s.error_rate === null ? '–' : percent.format(s.error_rate), 'num');
      cell(tr, count.format(s.dead_lettered_batches), 'num');
    },
    'No data streams',
    9,
  );
}

// ---- start --------------------------------------------------------------------------

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token-input').value.trim();
  $('token-input').value = '';
  if (token) signIn(token);
});
$('sign-out').addEventListener('click', () => showSignIn());

const fragment = new URLSearchParams(location.hash.slice(1)).get('token');
// Out of the address bar (and the history) before anything else happens.
if (location.hash) history.replaceState(null, '', location.pathname + location.search);
if (fragment) signIn(fragment);
else if (sessionStorage.getItem(AUTH_KEY)) startPolling();
else showSignIn();
