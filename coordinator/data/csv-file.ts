// Reading a CSV file from disk for shared/data/csv.ts's parser: the coordinator's
// half of CSV loading (workers never read files; they receive the dataset's bytes).

import { readFileSync } from 'node:fs';
import type { Dataset } from '../../shared/data/dataset.js';
import { parseCsv, type CsvOptions } from '../../shared/data/csv.js';
import { DataError } from '../../shared/errors.js';

/**
 * Reads `path`, then parses it with parseCsv; an unreadable file is a DataError naming the
 * path. fileName defaults to the path.
 */
export function loadCsvFile(
  path: string,
  options: Omit<CsvOptions, 'fileName'> & { readonly fileName?: string },
): Dataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new DataError(`${path}: cannot read the CSV file (${reason})`);
  }
  return parseCsv(text, { ...options, fileName: options.fileName ?? path });
}
