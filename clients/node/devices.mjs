// Offline devices for the multi-device model test: WatermelonDB and RxDB
// databases, each syncing `clients` with Strata through its own library's
// sync (synchronize() and replicateRxCollection). The kinds are listed in
// STRATA_DEVICES (e.g. "watermelon,rxdb"). Commands arrive as JSON lines
// on stdin; each gets one JSON line on stdout:
//
//   {"op":"create","device":0,"id":"…","name":"…"}  → {}
//   {"op":"update","device":0,"pick":7,"city":"…"}  → {"id": picked or null}
//   {"op":"delete","device":0,"pick":7}             → {"id": picked or null}
//   {"op":"sync","device":0,"lose":true}            → {"ok", "error"?, "pushes": [{"request","status","body"}]}
//   {"op":"rows","device":0}                        → {"rows": [{"id","name","city"}], "pending": n}
//
// `pick` chooses among the device's records sorted by id. With `lose` the
// device's first push request is made and its answer dropped, as when a
// connection breaks after the server applied the push; the library sees
// an error and retries as it would. Every push exchange is reported, lost
// or not, so the test can check what the server said it applied.
import readline from 'node:readline';
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { client, config } from './http.mjs';
import { clientSchema, replicate } from './rxdb-strata.mjs';
import { database as openWatermelon, hasUnsyncedChanges, sync as syncWatermelon } from './watermelon-strata.mjs';

// WatermelonDB logs sync diagnostics with console.*; stdout carries answers.
for (const level of ['log', 'warn', 'info']) console[level] = console.error;

const cfg = config();
const api = client(cfg);
await api.login(cfg.email, cfg.password);

/// Performs one push request; drops its answer if `device.lose` is set.
async function exchange(device, path, request) {
  const res = await api.request('POST', path, request);
  device.pushes.push({ request, status: res.status, body: res.body });
  if (device.lose) {
    device.lose = false;
    throw new Error('answer lost');
  }
  return res;
}

function watermelon(index) {
  const database = openWatermelon(`model-${process.pid}-${index}`);
  const clients = database.get('clients');
  const deviceId = `watermelon-${index}-${crypto.randomUUID()}`;
  const device = { pushes: [], lose: false };
  const sorted = async () => (await clients.query().fetch()).sort((a, b) => (a.id < b.id ? -1 : 1));
  return Object.assign(device, {
    async create(id, name) {
      await database.write(() =>
        clients.create((c) => {
          c._raw.id = id;
          c._setRaw('name', name);
          c._setRaw('status', 'lead');
          c._setRaw('city', null);
          c._setRaw('version', 1);
        }),
      );
    },
    async pick(n) {
      const all = await sorted();
      return all.length ? all[n % all.length] : null;
    },
    async update(record, city) {
      await database.write(() => record.update((c) => c._setRaw('city', city)));
    },
    async remove(record) {
      await database.write(() => record.markAsDeleted());
    },
    async sync() {
      await syncWatermelon(api, database, deviceId, {
        push: (body) => exchange(device, '/api/v1/sync/watermelon/push', body),
      });
    },
    async rows() {
      const all = await sorted();
      return {
        rows: all.map((c) => ({ id: c.id, name: c._raw.name, city: c._raw.city ?? null })),
        pending: (await hasUnsyncedChanges({ database })) ? 1 : 0,
      };
    },
  });
}

async function rxdb(index) {
  const db = await createRxDatabase({ name: `model${process.pid}d${index}`, storage: getRxStorageMemory() });
  await db.addCollections({ clients: { schema: clientSchema } });
  const device = { pushes: [], lose: false };
  const sorted = async () => (await db.clients.find().exec()).sort((a, b) => (a.id < b.id ? -1 : 1));
  return Object.assign(device, {
    async create(id, name) {
      await db.clients.insert({ id, name, status: 'lead', city: null, version: 1 });
    },
    async pick(n) {
      const all = await sorted();
      return all.length ? all[n % all.length] : null;
    },
    async update(doc, city) {
      await doc.getLatest().incrementalPatch({ city });
    },
    async remove(doc) {
      await doc.getLatest().incrementalRemove();
    },
    // One replication run to the end, resuming from the checkpoints RxDB
    // stored under the same identifier in earlier runs.
    async sync() {
      let failure = null;
      const replication = replicate(api, db.clients, 'clients', {
        live: false,
        batchSize: 50,
        retryTime: 20,
        identifier: `strata-model-${index}`,
        push: (rows) => exchange(device, '/api/v1/sync/rxdb/clients/push', rows),
      });
      replication.error$.subscribe((err) => {
        // A lost answer is retried by RxDB itself; anything else fails the sync.
        const text = String(err?.parameters?.errors?.[0]?.message ?? err?.message ?? err);
        if (!text.includes('answer lost')) failure = err;
      });
      await replication.awaitInitialReplication();
      await replication.cancel();
      if (failure) throw failure;
    },
    async rows() {
      const all = await sorted();
      return { rows: all.map((d) => ({ id: d.id, name: d.name, city: d.city ?? null })), pending: 0 };
    },
  });
}

const kinds = (process.env.STRATA_DEVICES ?? 'watermelon,rxdb').split(',');
const devices = [];
for (const [i, kind] of kinds.entries()) {
  if (kind === 'watermelon') devices.push(watermelon(i));
  else if (kind === 'rxdb') devices.push(await rxdb(i));
  else throw new Error(`unknown device kind ${kind}`);
}

async function handle(cmd) {
  const device = devices[cmd.device];
  switch (cmd.op) {
    case 'create':
      await device.create(cmd.id, cmd.name);
      return {};
    case 'update': {
      const record = await device.pick(cmd.pick);
      if (record) await device.update(record, cmd.city);
      return { id: record?.id ?? null };
    }
    case 'delete': {
      const record = await device.pick(cmd.pick);
      if (record) await device.remove(record);
      return { id: record?.id ?? null };
    }
    case 'sync': {
      device.pushes = [];
      device.lose = Boolean(cmd.lose);
      try {
        await device.sync();
        return { ok: true, pushes: device.pushes };
      } catch (err) {
        return { ok: false, error: String(err?.stack ?? err), pushes: device.pushes };
      } finally {
        device.lose = false;
      }
    }
    case 'rows':
      return device.rows();
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await handle(JSON.parse(line));
  } catch (err) {
    answer = { fatal: String(err?.stack ?? err) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
process.exit(0);
