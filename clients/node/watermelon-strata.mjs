// WatermelonDB wired to Strata: the `clients` table and synchronize() with
// Strata's WatermelonDB endpoints.
import { Database, Model, appSchema, tableSchema } from '@nozbe/watermelondb';
import lokijs from '@nozbe/watermelondb/adapters/lokijs/index.js';
import sync_ from '@nozbe/watermelondb/sync/index.js';

// The package is CommonJS: its default export is the module object.
const LokiJSAdapter = lokijs.default ?? lokijs;
export const { synchronize, hasUnsyncedChanges } = sync_;

export class Client extends Model {
  static table = 'clients';
}

const schema = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'clients',
      columns: [
        { name: 'name', type: 'string' },
        { name: 'status', type: 'string' },
        { name: 'city', type: 'string', isOptional: true },
        { name: 'version', type: 'number' },
      ],
    }),
  ],
});

/// An in-memory database (LokiJS, no web worker) named `name`.
export function database(name) {
  const adapter = new LokiJSAdapter({ schema, useWebWorker: false, useIncrementalIndexedDB: false, dbName: name });
  return new Database({ adapter, modelClasses: [Client] });
}

/// One synchronize() of `db` as device `deviceId`. `push(body)` performs
/// the push request (default: `api.request`), for callers that watch it.
export async function sync(api, db, deviceId, { push } = {}) {
  const send = push ?? ((body) => api.request('POST', '/api/v1/sync/watermelon/push', body));
  await synchronize({
    database: db,
    pullChanges: async ({ lastPulledAt }) => {
      const res = await api.request('POST', '/api/v1/sync/watermelon/pull', {
        last_pulled_at: lastPulledAt ?? null,
        tables: ['clients'],
        device_id: deviceId,
      });
      if (res.status !== 200) throw new Error(`pull ${res.status}: ${JSON.stringify(res.body)}`);
      return { changes: res.body.changes, timestamp: res.body.timestamp };
    },
    pushChanges: async ({ changes, lastPulledAt }) => {
      const res = await send({ changes, last_pulled_at: lastPulledAt, device_id: deviceId });
      if (res.status !== 200) throw new Error(`push ${res.status}: ${JSON.stringify(res.body)}`);
      // Records the server refused stay unsynced; the rest are done.
      return { experimentalRejectedIds: res.body.experimentalRejectedIds };
    },
    sendCreatedAsUpdated: false,
  });
}
