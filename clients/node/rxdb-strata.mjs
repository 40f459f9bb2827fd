// replicateRxCollection wired to Strata's RxDB endpoints for one model.
import { replicateRxCollection } from 'rxdb/plugins/replication';

/// The RxDB schema of Strata's `clients` (the fields the examples use).
export const clientSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 36 },
    name: { type: 'string' },
    status: { type: 'string' },
    city: { type: ['string', 'null'] },
    version: { type: 'number' },
  },
  required: ['id', 'name'],
};

/// Replicates `collection` with model `name`; `onError` gets replication
/// errors; `onPull` is called before each pull; `push(rows)` performs the
/// push request (default: `api.request`), for callers that watch it.
/// Replications with the same `identifier` resume from the checkpoints
/// RxDB stored for it.
export function replicate(
  api,
  collection,
  name,
  { live = true, batchSize = 20, retryTime = 200, onError, onPull, push, identifier = `strata-${name}-${process.pid}` } = {},
) {
  const send = push ?? ((rows) => api.request('POST', `/api/v1/sync/rxdb/${name}/push`, rows));
  const replication = replicateRxCollection({
    collection,
    replicationIdentifier: identifier,
    live,
    retryTime,
    pull: {
      batchSize,
      async handler(checkpoint, size) {
        if (onPull) onPull();
        const res = await api.request('POST', `/api/v1/sync/rxdb/${name}/pull`, {
          checkpoint: checkpoint ?? null,
          batch_size: size,
        });
        if (res.status !== 200) throw new Error(`pull ${res.status}: ${JSON.stringify(res.body)}`);
        return { documents: res.body.documents, checkpoint: res.body.checkpoint };
      },
    },
    push: {
      batchSize: 50,
      async handler(rows) {
        const res = await send(rows);
        if (res.status !== 200) throw new Error(`push ${res.status}: ${JSON.stringify(res.body)}`);
        // The master state of every row the server did not take as sent.
        return res.body;
      },
    },
  });
  if (onError) replication.error$.subscribe(onError);
  return replication;
}
