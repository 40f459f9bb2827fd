// RxDB (memory storage) replicating a collection with Strata through
// replicateRxCollection: checkpointed pulls, pushes answering conflicts.
// Prints a JSON report; exits 1 if the replication reports an error.
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { clientSchema, replicate } from './rxdb-strata.mjs';
import { client, config } from './http.mjs';

const cfg = config();
const api = client(cfg);
await api.login(cfg.email, cfg.password);

const db = await createRxDatabase({ name: `strata${process.pid}`, storage: getRxStorageMemory() });
await db.addCollections({
  clients: { schema: clientSchema },
  tasks: {
    schema: {
      version: 0,
      primaryKey: 'id',
      type: 'object',
      properties: {
        id: { type: 'string', maxLength: 36 },
        title: { type: 'string' },
        status: { type: 'string' },
        priority: { type: 'string' },
        version: { type: 'number' },
      },
      required: ['id', 'title'],
    },
  },
});

let failure = null;
const onError = (err) => {
  failure = err;
};
const replication = replicate(api, db.clients, 'clients', { onError });
const tasks = replicate(api, db.tasks, 'tasks', { onError });

try {
  await replication.awaitInitialReplication();
  if (failure) throw failure;
  const pulled = await db.clients.find().exec();
  const report = { pulled: pulled.length };
  const seed = await db.clients.findOne({ selector: { name: 'Seed 3' } }).exec();
  const gone = await db.clients.findOne({ selector: { name: 'Seed 4' } }).exec();
  await db.clients.bulkInsert(
    ['Rx A', 'Rx B'].map((name) => ({ id: crypto.randomUUID(), name, status: 'lead', city: 'Turin', version: 1 })),
  );
  await seed.patch({ city: 'Patched by RxDB' });
  await gone.remove();
  await replication.awaitInSync();
  if (failure) throw failure;
  const after = await db.clients.find().exec();
  report.local = after.length;
  report.names = after.map((d) => d.name).sort();

  // Two edits of a task (a `reject` model) one after the other: the second
  // is made on the copy the first push left, and must not be lost.
  await tasks.awaitInitialReplication();
  const task = await db.tasks.insert({ id: crypto.randomUUID(), title: 'Call', status: 'open', priority: 'normal' });
  await tasks.awaitInSync();
  await task.getLatest().patch({ title: 'Call back' });
  await tasks.awaitInSync();
  await task.getLatest().patch({ status: 'in_progress' });
  await tasks.awaitInSync();
  if (failure) throw failure;
  const local = task.getLatest();
  report.task = { id: local.id, title: local.title, status: local.status };
  await tasks.cancel();
  await replication.cancel();
  await db.remove();
  console.log(JSON.stringify(report));
  process.exit(0);
} catch (err) {
  console.error(`rxdb replication error: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}
