// RxDB's initial replication of every client of the tenant with the pull
// batch size in STRATA_BATCH: prints how many documents arrived and how
// long it took. Exits 1 if the replication reports an error.
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateRxCollection } from 'rxdb/plugins/replication';
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
const replication = replicateRxCollection({
  collection: db.clients,
  replicationIdentifier: `initial-${process.pid}`,
  live: false,
  retryTime: 200,
  pull: {
    batchSize: batch,
    async handler(checkpoint, batchSize) {
      pulls += 1;
      const res = await api.request('POST', '/api/v1/sync/rxdb/clients/pull', {
        checkpoint: checkpoint ?? null,
        batch_size: batchSize,
      });
      if (res.status !== 200) throw new Error(`pull ${res.status}: ${JSON.stringify(res.body)}`);
      return { documents: res.body.documents, checkpoint: res.body.checkpoint };
    },
  },
});
replication.error$.subscribe((err) => {
  failure = err;
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
