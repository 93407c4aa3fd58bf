// The dashboard's HTML (served at /dashboard to anyone: it holds no data). Its script,
// dist/browser/dashboard.js (coordinator/pages/dashboard-client.ts), subscribes to
// /events and fills it in. The workers section shows counts by status, a search box,
// and either every worker (a small fleet) or the fastest and slowest few.

const HEAD = `<thead><tr>
      <th>id</th><th>kind</th><th>agent / host</th><th>status</th>
      <th>samples/s</th><th>tasks done</th><th>last seen</th>
    </tr></thead>`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flocktrain dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #1d2330; color: #fff; }
  header h1 { font-size: 18px; margin: 0; }
  #status { font-weight: 600; }
  #status.live { color: #7ee2a0; } #status.done { color: #9cc4ff; } #status.off { color: #ff9c9c; }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; padding: 16px 24px; }
  section {
    background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.1); min-width: 0;
  }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 0 0 8px; color: #5b6475; text-transform: uppercase; letter-spacing: .04em; }
  canvas { width: 100%; height: 220px; display: block; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e4e7ee; white-space: nowrap; }
  th { color: #5b6475; font-weight: 600; }
  tr.left td, tr.banned td { color: #9aa3b5; }
  tr.standby td, tr.idle td { color: #8a5a00; }
  #worker-counts { margin: 0 0 8px; }
  #worker-counts span { font-weight: 600; }
  #worker-search {
    font: inherit; width: 100%; max-width: 420px; padding: 4px 8px; margin: 0 0 6px; box-sizing: border-box;
  }
  #search-note { color: #5b6475; font-size: 13px; margin: 0 0 6px; }
  #search-table { margin: 0 0 12px; }
  h3 { font-size: 13px; margin: 10px 0 4px; color: #5b6475; }
  .bar { height: 14px; background: #e4e7ee; border-radius: 7px; overflow: hidden; margin: 6px 0; }
  .bar > div { height: 100%; width: 0; background: #3b7ddd; transition: width .3s; }
  #events { list-style: none; margin: 0; padding: 0; max-height: 160px; overflow: auto; font-size: 13px; }
  #events li { padding: 2px 0; border-bottom: 1px dotted #e4e7ee; }
  #events time { color: #5b6475; margin-right: 6px; }
  #config td:first-child { color: #5b6475; }
</style>
</head>
<body data-state="connecting">
<header><h1>flocktrain</h1><span id="status">connecting…</span><span id="summary"></span></header>
<main>
  <section class="wide">
    <h2>Progress</h2>
    <div id="progress-text">waiting for the run to start</div>
    <div class="bar"><div id="progress-bar"></div></div>
    <div id="eta"></div>
  </section>
  <section><h2>Training loss per step</h2><canvas id="loss-chart" data-points="0"></canvas></section>
  <section><h2>Validation accuracy per epoch</h2><canvas id="acc-chart" data-points="0"></canvas></section>
  <section class="wide">
    <h2>Workers</h2>
    <div id="worker-counts">0 workers</div>
    <input id="worker-search" type="search" placeholder="find workers by id, agent or address" autocomplete="off">
    <div id="search-note"></div>
    <table id="search-table" hidden>${HEAD}<tbody id="search-results"></tbody></table>
    <div id="extremes" hidden>
      <h3>Fastest</h3><table>${HEAD}<tbody id="fastest"></tbody></table>
      <h3>Slowest</h3><table>${HEAD}<tbody id="slowest"></tbody></table>
    </div>
    <table id="all-workers">${HEAD}<tbody id="workers"></tbody></table>
  </section>
  <section><h2>Config</h2><table><tbody id="config"></tbody></table></section>
  <section><h2>Events</h2><ul id="events"></ul></section>
</main>
<script src="/assets/dashboard.js"></script>
</body>
</html>
`;
