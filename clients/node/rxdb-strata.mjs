// replicateRxCollection wired to Strata's RxDB endpoints for one model.
import { replicateRxCollection } from 'rxdb/plugins/replication';

/// Replicates `collection` with model `name`; `onError` gets replication
/// errors; `onPull` is called before each pull.
export function replicate(api, collection, name, { live = true, batchSize = 20, onError, onPull } = {}) {
  const replication = replicateRxCollection({
    collection,
    replicationIdentifier: `strata-${name}-${process.pid}`,
    live,
    retryTime: 200,
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
        const res = await api.request('POST', `/api/v1/sync/rxdb/${name}/push`, rows);
        if (res.status !== 200) throw new Error(`push ${res.status}: ${JSON.stringify(res.body)}`);
        return res.body;
      },
    },
  });
  if (onError) replication.error$.subscribe(onError);
  return replication;
}
