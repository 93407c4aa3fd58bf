// The worker page's HTML (served at /): a status panel and two buttons. Its script,
// dist/browser/worker-page.js (worker/browser/page.ts), fills it in.

export const WORKER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flocktrain worker</title>
<style>
  body { font: 16px/1.45 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  main {
    max-width: 560px; margin: 40px auto; background: #fff; border-radius: 10px; padding: 24px 28px;
    box-shadow: 0 1px 4px rgba(0,0,0,.12);
  }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p.sub { margin: 0 0 18px; color: #5b6475; font-size: 14px; }
  dl { display: grid; grid-template-columns: 140px 1fr; gap: 6px 12px; margin: 0 0 18px; }
  dt { color: #5b6475; }
  dd { margin: 0; font-variant-numeric: tabular-nums; }
  .ok { color: #17803d; font-weight: 600; }
  .off { color: #a33; font-weight: 600; }
  #message { padding: 10px 12px; border-radius: 6px; margin: 0 0 16px; background: #eef3fb; }
  #message.error { background: #fde8e8; color: #8a1c1c; font-weight: 600; }
  button {
    font: inherit; padding: 6px 16px; margin-right: 8px; border-radius: 6px; border: 1px solid #9aa3b5;
    background: #fff; cursor: pointer;
  }
  button:disabled { opacity: .45; cursor: default; }
  a { color: #2456b3; }
</style>
</head>
<body data-phase="starting">
<main>
  <h1>flocktrain worker</h1>
  <p class="sub">
    This tab trains a shared model together with the other workers. The work runs in a background thread.
  </p>
  <p id="message">Starting…</p>
  <dl>
    <dt>Connection</dt><dd id="connection" class="off">not connected</dd>
    <dt>Worker id</dt><dd id="worker-id">–</dd>
    <dt>Tasks done</dt><dd id="tasks">0</dd>
    <dt>Samples done</dt><dd id="samples">0</dd>
    <dt>Threads</dt><dd id="threads">–</dd>
    <dt>Samples/s</dt><dd id="speed">–</dd>
    <dt>Current loss</dt><dd id="loss">–</dd>
    <dt>Dataset</dt><dd id="dataset">not loaded yet</dd>
  </dl>
  <button id="pause" disabled
    title="Leave the run for now (your shards go to the other workers); Resume rejoins">Pause</button>
  <button id="leave" disabled title="Leave the run for good">Leave</button>
  <a id="dashboard-link" href="/dashboard">Dashboard</a>
</main>
<script src="/assets/worker-page.js"></script>
</body>
</html>
`;
