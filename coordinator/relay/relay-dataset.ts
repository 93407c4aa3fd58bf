// The dataset a relay serves its workers: the very one its coordinator serves, under
// the same hash. A worker keeps only the widened float32 features of a dataset sent
// as bytes (shared/data/byte-features.ts), so the relay narrows them again; narrowing
// is a function of the values alone, so it gives back the coordinator's levels and
// codes, and the hash, checked here, says so.

import { narrowToBytes } from '../../shared/data/byte-features.js';
import type { Dataset } from '../../shared/data/dataset.js';
import { DataError } from '../../shared/errors.js';
import { datasetHash } from '../../shared/node/dataset-hash.js';

/** `loaded` in the form whose hash is `hash` (its coordinator's), or a DataError when there is none. */
export function servedDataset(loaded: Dataset, hash: string): Dataset {
  if (datasetHash(loaded) === hash) return loaded;
  const bytes = loaded.bytes === undefined ? narrowToBytes(loaded.features) : null;
  if (bytes !== null) {
    const narrowed: Dataset = { ...loaded, bytes };
    if (datasetHash(narrowed) === hash) return narrowed;
  }
  throw new DataError(
    `dataset ${loaded.name}: the relay cannot serve it under its coordinator's hash ${hash.slice(0, 12)}…`,
  );
}
