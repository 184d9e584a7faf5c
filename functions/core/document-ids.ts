/**
 * Document ids and the S3 keys they live under. One rule set for the API, the CLI, the encoder
 * and the local S3 emulator, so an id that is accepted can be stored both on S3 (1,024-byte keys)
 * and on a local file system (255-byte file names), and can never name a path outside the bucket.
 *
 * Rules for a document id:
 * - 1–512 characters after trimming, no control characters (U+0000–U+001F, U+007F);
 * - no `?` or `#`: API Gateway HTTP APIs hand the path to Lambda URL-decoded and cut it at a
 *   decoded `?` or `#`, so `/documents/a%3Fb` would reach the function as document `a`;
 * - `/` separates segments (kept as folders in S3); no segment is empty, `.` or `..`;
 * - every segment is at most {@link MAX_ID_SEGMENT_BYTES} bytes of UTF-8;
 * - the whole key `docs/<id>.json` is at most 1,024 bytes of UTF-8.
 */

/** Longest accepted document id, in characters. */
export const MAX_DOCUMENT_ID_LENGTH = 512;
/**
 * Longest segment (between `/`) of a document id or uploaded key, bytes of UTF-8. The local S3
 * emulator stores an object as files named `<segment>._S3rver_metadata.json` (22 bytes added),
 * and file names are at most 255 bytes; 200 leaves room for the `.json` the API appends.
 */
export const MAX_ID_SEGMENT_BYTES = 200;
/** S3's key limit, bytes of UTF-8. */
export const MAX_S3_KEY_BYTES = 1_024;

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).length;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Why a document id is not acceptable, or undefined when it is. Messages name the rule, never
 * echo the id (it may be long or hostile).
 */
export function documentIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'id must not be empty';
  if (id.length > MAX_DOCUMENT_ID_LENGTH) return `id must be at most ${MAX_DOCUMENT_ID_LENGTH} characters`;
  if (CONTROL_CHARACTER.test(id)) return 'id must not contain control characters';
  if (/[?#]/.test(id)) return 'id must not contain "?" or "#" (API Gateway cannot carry them in a path)';
  const segmentProblem = keySegmentsProblem(id, MAX_ID_SEGMENT_BYTES);
  if (segmentProblem) return `id ${segmentProblem}`;
  if (utf8Length(`docs/${id}.json`) > MAX_S3_KEY_BYTES)
    return `id must be at most ${MAX_S3_KEY_BYTES - 10} bytes of UTF-8`;
  return undefined;
}

/**
 * Why an S3 key cannot be stored safely (local file system and S3 alike), or undefined. Used by
 * the local S3 emulator's guard and by the CLI before uploading.
 *
 * @param maxSegmentBytes longest segment, bytes (default 233: 255 minus the emulator's suffix).
 */
export function objectKeyProblem(key: string, maxSegmentBytes = 233): string | undefined {
  if (key.length === 0) return 'key must not be empty';
  if (utf8Length(key) > MAX_S3_KEY_BYTES) return `key must be at most ${MAX_S3_KEY_BYTES} bytes of UTF-8`;
  if (key.includes('\u0000')) return 'key must not contain NUL';
  return keySegmentsProblem(key, maxSegmentBytes);
}

function keySegmentsProblem(path: string, maxSegmentBytes: number): string | undefined {
  for (const segment of path.split('/')) {
    if (segment === '') return 'must not have empty segments (leading, trailing or doubled "/")';
    if (segment === '.' || segment === '..') return 'must not have "." or ".." segments';
    if (utf8Length(segment) > maxSegmentBytes)
      return `segments must be at most ${maxSegmentBytes} bytes of UTF-8 each`;
  }
  return undefined;
}

/**
 * Encode a key as S3 does in event notifications: URL-encoded (RFC 3986 unreserved characters
 * and `/` kept), a space as `+`. So `docs/a b+c%.md` arrives as `docs/a+b%2Bc%25.md`.
 */
export function encodeNotificationKey(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment)
        .replace(/[!'()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`)
        .replace(/%20/g, '+'),
    )
    .join('/');
}

/**
 * Decode a key from an S3 event notification (`+` is a space). Undefined for a key that is not
 * valid URL encoding, which S3 never sends: the caller fails that record instead of guessing.
 */
export function decodeNotificationKey(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}
