// Worker tokens: generated when the user gives none, compared in constant time so
// the comparison leaks nothing about how much of a guess was right.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function generateToken(): string {
  return randomBytes(16).toString('hex');
}

export function tokensMatch(expected: string, presented: string): boolean {
  // Hash both sides first: timingSafeEqual needs equal lengths, and the length of a
  // guess must not shortcut the comparison either.
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}
