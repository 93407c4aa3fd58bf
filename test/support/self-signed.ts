// A self-signed certificate for 127.0.0.1, made with the system's openssl, for the
// tests that serve https and wss. Not a test file.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Writes a P-256 certificate for 127.0.0.1, valid a day, and its key into `dir`; their paths. */
export function selfSignedCertificate(dir: string): { readonly cert: string; readonly key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
