// RxDB's initial replication of every client of the tenant with the pull
// batch size in STRATA_BATCH: prints how many documents arrived and how
// long it took. Exits 1 if the replication reports an error.
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicate } from './rxdb-strata.mjs';
import { client, config } from './http.mjs';

const cfg = config();
const api = client(cfg);
await api.login(cfg.email, cfg.password);
const batch = Number(process.env.STRATA_BATCH ?? '100');

const db = await createRxDatabase({ name: `initial${process.pid}`, storage: getRxStorageMemory() });
await db.addCollections({
  clients: {
    schema: {
      version: 0,
      primaryKey: 'id',
      type: 'object',
      properties: { id: { type: 'string', maxLength: 36 }, name: { type: 'string' } },
      required: ['id', 'name'],
    },
  },
});
let failure = null;
let pulls = 0;
const started = performance.now();
const replication = replicate(api, db.clients, 'clients', {
  live: false,
  batchSize: batch,
  onError: (err) => {
    failure = err;
  },
  onPull: () => {
    pulls += 1;
  },
});
try {
  await replication.awaitInitialReplication();
  if (failure) throw failure;
  const count = await db.clients.count().exec();
  const ms = Math.round(performance.now() - started);
  await replication.cancel();
  await db.remove();
  console.log(JSON.stringify({ batch, pulled: count, pulls, ms }));
  process.exit(0);
} catch (err) {
  console.error(`rxdb replication error: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}
