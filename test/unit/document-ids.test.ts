import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeNotificationKey,
  documentIdProblem,
  encodeNotificationKey,
  objectKeyProblem,
} from '../../functions/core/document-ids.js';
import { decideClaim, decideRelease } from '../../functions/core/document-ownership.js';
import { PerKeySequencers } from '../../infra/local/s3-fidelity.js';

describe('document ids', () => {
  it('accepts what S3 and a local file system can both store, and names the rule otherwise', () => {
    for (const id of ['a', 'help/reset password', 'ünïcødé/文档', 'plus+sign', '100%', 'x'.repeat(200)])
      expect(documentIdProblem(id), id).toBeUndefined();
    const refused: Array<[string, RegExp]> = [
      ['', /empty/],
      ['../escape', /"\." or "\.\."/],
      ['a/./b', /"\." or "\.\."/],
      ['a//b', /empty segments/],
      ['/a', /empty segments/],
      ['a\u0000b', /control/],
      ['what?', /"\?" or "#"/],
      ['x'.repeat(201), /200 bytes/],
      ['é'.repeat(101), /200 bytes/],
      [Array.from({ length: 6 }, () => 'y'.repeat(199)).join('/'), /512 characters|bytes/],
    ];
    for (const [id, message] of refused) expect(documentIdProblem(id), id).toMatch(message);
    expect(objectKeyProblem('docs/../../etc/passwd')).toMatch(/\.\./);
    expect(objectKeyProblem(`docs/${'z'.repeat(234)}.md`)).toMatch(/233 bytes/);
  });

  it('encodes notification keys as S3 does (space as +) and decodes every key back', () => {
    expect(encodeNotificationKey('docs/a b+c%(1).md')).toBe('docs/a+b%2Bc%25%281%29.md');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (key) => {
        expect(decodeNotificationKey(encodeNotificationKey(key))).toBe(key);
      }),
      { seed: 7, numRuns: 500 },
    );
    expect(decodeNotificationKey('docs/%zz')).toBeUndefined();
  });

  it('hands out sequencers that increase per key, even within one millisecond, and are not ordered across keys', () => {
    const sequencers = new PerKeySequencers(() => 1_800_000_000_000);
    const a = [sequencers.next('docs/a'), sequencers.next('docs/a'), sequencers.next('docs/a')];
    expect([...a].sort()).toEqual(a);
    expect(new Set(a).size).toBe(3);
    const b = sequencers.next('docs/b');
    expect(b.slice(0, 8)).not.toBe((a[0] as string).slice(0, 8));
  });
});

describe('document ownership across keys', () => {
  const owned = { sourceKey: 'docs/x.md', sourceSequencer: '0005', status: 'indexed' as const };
  it('orders events by sequencer within the owning key only', () => {
    expect(decideClaim(undefined, 'docs/x.md', '0001')).toBe('apply');
    expect(decideClaim(owned, 'docs/x.md', '0006')).toBe('apply');
    expect(decideClaim(owned, 'docs/x.md', '0005')).toBe('stale');
    // Another key's sequencer says nothing about order: "9999" is not newer than "0005".
    expect(decideClaim(owned, 'docs/x.json', '9999')).toBe('conflict');
    expect(decideClaim({ ...owned, status: 'deleted' }, 'docs/x.json', '0000')).toBe('apply');
    expect(decideRelease(owned, 'docs/x.json', '9999')).toBe('not-owned');
    expect(decideRelease(owned, 'docs/x.md', '0004')).toBe('stale');
    expect(decideRelease(undefined, 'docs/x.md', '0004')).toBe('apply');
  });
});
