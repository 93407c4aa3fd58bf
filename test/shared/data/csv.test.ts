import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCsvFile } from '../../../coordinator/data/csv-file.js';
import { parseCsv, type CsvOptions } from '../../../shared/data/csv.js';
import { DataError } from '../../../shared/errors.js';

const classify: CsvOptions = { fileName: 'data/iris.csv', labelColumn: 'species', task: 'classification' };

/** The DataError parseCsv throws for `text`, or a failure if it parses. */
function errorOf(text: string, options: CsvOptions = classify): DataError {
  try {
    parseCsv(text, options);
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return err as DataError;
  }
  throw new Error('expected parseCsv to throw');
}

describe('parseCsv', () => {
  it('maps class names to indices sorted by code unit, label column anywhere', () => {
    const ds = parseCsv('a,species,b\n1,virginica,2\n3,Setosa,4\n5,setosa,6\n7,virginica,8\n', classify);
    expect(ds.name).toBe('iris');
    expect(ds.kind).toBe('classification');
    expect(ds.numSamples).toBe(4);
    expect(ds.numFeatures).toBe(2);
    expect([...ds.features]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ds.classNames).toEqual(['Setosa', 'setosa', 'virginica']);
    expect(ds.numClasses).toBe(3);
    expect(ds.labelWidth).toBe(1);
    expect([...ds.labels]).toEqual([2, 0, 1, 2]);
  });

  it('uses non-negative integer labels as class indices directly', () => {
    const ds = parseCsv('x,species\n0.5,3\n-1.5,0\n2e1,03\n', classify);
    expect([...ds.labels]).toEqual([3, 0, 3]);
    expect(ds.numClasses).toBe(4);
    expect(ds.classNames).toEqual(['0', '1', '2', '3']);
    expect([...ds.features]).toEqual([0.5, -1.5, 20]);
  });

  it('treats labels as names when any is not a non-negative integer', () => {
    const ds = parseCsv('x,species\n1,2\n2,-1\n3,10\n', classify);
    expect(ds.classNames).toEqual(['-1', '10', '2']);
    expect([...ds.labels]).toEqual([2, 0, 1]);
  });

  it('reads quoted fields, doubled quotes, commas and line breaks in quotes, CRLF, blank lines', () => {
    const text =
      '\uFEFF"x 1",species,"y"\r\n' +
      '"1.5","a, ""quoted"" name", 2 \r\n' +
      '\r\n' +
      '3,"two\r\nlines",4\r\n' +
      '   \r\n' +
      '5,plain,"6"';
    const ds = parseCsv(text, classify);
    expect(ds.numSamples).toBe(3);
    expect([...ds.features]).toEqual([1.5, 2, 3, 4, 5, 6]);
    expect(ds.classNames).toEqual(['a, "quoted" name', 'plain', 'two\r\nlines']);
    expect([...ds.labels]).toEqual([0, 2, 1]);
  });

  it('reads a regression target', () => {
    const ds = parseCsv('x,y,price\n1,2,10.25\n3,4,-7\n', {
      fileName: 'houses.tsv.csv',
      labelColumn: 'price',
      task: 'regression',
    });
    expect(ds.name).toBe('houses.tsv');
    expect(ds.kind).toBe('regression');
    expect(ds.numClasses).toBe(0);
    expect(ds.classNames).toEqual([]);
    expect([...ds.labels]).toEqual([10.25, -7]);
    expect([...ds.features]).toEqual([1, 2, 3, 4]);
  });

  it('names the file, line and column of a value that is not a number', () => {
    // Line 4 of the file: the blank line 3 still counts.
    expect(errorOf('a,species,b\n1,x,2\n\n3,y,abc\n').message).toBe('data/iris.csv:4:b: expected a number, got "abc"');
    expect(errorOf('a,species,b\n,x,2\n').message).toBe('data/iris.csv:2:a: expected a number, got ""');
    expect(errorOf('a,species,b\n1,x,Infinity\n').message).toBe('data/iris.csv:2:b: expected a number, got "Infinity"');
    expect(errorOf('a,species,b\n1,x,0x10\n').message).toBe('data/iris.csv:2:b: expected a number, got "0x10"');
    expect(errorOf('a,species,b\n1,x,1e999\n').message).toBe('data/iris.csv:2:b: expected a number, got "1e999"');
    // A field after a quoted line break is on the later line.
    expect(errorOf('a,species,b\n1,"multi\nline",no\n').message).toBe('data/iris.csv:3:b: expected a number, got "no"');
  });

  it('names the line of a regression target that is not a number', () => {
    const options: CsvOptions = { fileName: 'h.csv', labelColumn: 'y', task: 'regression' };
    expect(errorOf('x,y\n1,2\n3,cheap\n', options).message).toBe('h.csv:3:y: expected a number, got "cheap"');
  });

  it('names the line and both counts of a row with the wrong number of fields', () => {
    expect(errorOf('a,species,b\r\n1,x,2\r\n3,y\r\n').message).toBe(
      'data/iris.csv:3: expected 3 fields as in the header, got 2',
    );
    expect(errorOf('a,species,b\n1,x,2,\n').message).toBe('data/iris.csv:2: expected 3 fields as in the header, got 4');
  });

  it('lists the columns when the label column is missing', () => {
    expect(errorOf('sepal length,petal,class\n1,2,x\n').message).toBe(
      'data/iris.csv: no label column "species"; the columns are "sepal length", "petal", "class"',
    );
  });

  it('rejects an empty file, a header without rows and a label-only file', () => {
    expect(errorOf('').message).toBe('data/iris.csv: empty file, expected a header row and data rows');
    expect(errorOf('\n\r\n\n').message).toBe('data/iris.csv: empty file, expected a header row and data rows');
    expect(errorOf('a,species\n\n').message).toBe('data/iris.csv: no data rows after the header');
    expect(errorOf('species\nx\n').message).toBe(
      'data/iris.csv: no feature columns besides the label column "species"',
    );
  });

  it('rejects broken quoting, duplicate columns, empty class labels and huge class indices', () => {
    expect(errorOf('a,species\n1,"open\n').message).toBe('data/iris.csv:2: unterminated quoted field');
    expect(errorOf('a,species\n1,"x"y\n').message).toBe(
      'data/iris.csv:2: expected a comma or a line end after a closing quote, got "y"',
    );
    expect(errorOf('a,species,a\n1,x,2\n').message).toBe('data/iris.csv:1: duplicate column name "a"');
    expect(errorOf('a,species\n1,x\n2,\n').message).toBe('data/iris.csv:3:species: expected a class label, got ""');
    expect(errorOf('a,species\n1,70000\n').message).toBe(
      'data/iris.csv:2:species: expected a class index below 65536, got "70000"',
    );
  });

  it('keeps messages on one line and short', () => {
    const message = errorOf(`a,species\n"${'z'.repeat(100)}\nq",x\n`).message;
    expect(message).toBe(`data/iris.csv:2:a: expected a number, got "${'z'.repeat(57)}..."`);
  });
});

describe('loadCsvFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flocktrain-csv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file and cites its path in errors', () => {
    const path = join(dir, 'tiny.csv');
    writeFileSync(path, 'x,label\n1,a\n2,b\n');
    const ds = loadCsvFile(path, { labelColumn: 'label', task: 'classification' });
    expect(ds.name).toBe('tiny');
    expect(ds.classNames).toEqual(['a', 'b']);
    writeFileSync(path, 'x,label\nnope,a\n');
    expect(() => loadCsvFile(path, { labelColumn: 'label', task: 'classification' })).toThrow(
      new DataError(`${path}:2:x: expected a number, got "nope"`),
    );
  });

  it('turns a missing file into a DataError naming the path', () => {
    const path = join(dir, 'missing.csv');
    expect(() => loadCsvFile(path, { labelColumn: 'label', task: 'regression' })).toThrow(
      new DataError(`${path}: cannot read the CSV file (ENOENT)`),
    );
  });
});
