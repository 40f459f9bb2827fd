// WatermelonDB (LokiJS adapter, no web worker) syncing against Strata with
// its own synchronize(): an initial pull, local creates/updates/deletes,
// then a second sync that pushes them. Prints a JSON report; exits 1 if
// WatermelonDB reports a sync error.
import { database as open, sync as syncOnce } from './watermelon-strata.mjs';
import { client, config } from './http.mjs';

// WatermelonDB's sync diagnostics ("[Sync] Server wants client to create
// record …, but it already exists locally", …) are collected: a backend
// that follows its contract causes none.
const diagnostics = [];
for (const level of ['log', 'warn', 'error', 'info']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    const text = args.map(String).join(' ');
    if (text.includes('[Sync]')) diagnostics.push(text);
    original(...args);
  };
}

// A stable id of this installation, sent with pulls and pushes.
const deviceId = `watermelon-${crypto.randomUUID()}`;

const cfg = config();
const api = client(cfg);
await api.login(cfg.email, cfg.password);

const database = open(`strata-${process.pid}`);
const sync = () => syncOnce(api, database, deviceId);

const report = {};
try {
  await sync();
  const clients = database.get('clients');
  const pulled = await clients.query().fetch();
  report.pulled = pulled.length;
  const byName = Object.fromEntries(pulled.map((c) => [c._raw.name, c]));
  await database.write(async () => {
    for (const name of ['Melon A', 'Melon B', 'Melon C']) {
      await clients.create((c) => {
        c._raw.id = crypto.randomUUID();
        c._setRaw('name', name);
        c._setRaw('status', 'lead');
        c._setRaw('city', 'Wroclaw');
        c._setRaw('version', 1);
      });
    }
    await byName['Seed 1'].update((c) => c._setRaw('city', 'Edited offline'));
    await byName['Seed 2'].markAsDeleted();
  });
  await sync();
  // Changes made on the server meanwhile arrive with the next sync.
  await sync();
  const after = await clients.query().fetch();
  report.local = after.length;
  report.names = after.map((c) => c._raw.name).sort();
  report.diagnostics = diagnostics;
  console.log(JSON.stringify(report));
  process.exit(0);
} catch (err) {
  console.error(`watermelondb sync error: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}
