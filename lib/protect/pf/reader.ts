/**
 * Streaming reader and verifier of Gramine encrypted files. One sequential pass suffices: every
 * node's key and tag sit in its parent (metadata -> root MHT -> child MHTs -> data nodes), and a
 * parent always comes earlier on disk than its children.
 *
 * Plaintext is yielded node by node as soon as that node is authenticated; a truncated or
 * over-long file is only known at the end, so consumers must read to completion (or use
 * {@link verifyProtectedFile}) before trusting the file as a whole.
 */
import type { CryptoBackend } from '../../crypto/backend.js';
import { GcmAuthError, checkLength } from '../../crypto/backend.js';
import { defaultBackend } from '../../crypto/default.js';
import { deriveMetadataKey } from '../../crypto/sp800-108.js';
import { PfError } from './errors.js';
import type { PfErrorLocation } from './errors.js';
import {
  CHILD_MHTS_PER_MHT,
  CRYPTO_PAIR_SIZE,
  DATA_NODES_PER_MHT,
  ENC_OFF_DATA,
  ENC_OFF_ROOT_KEY,
  ENC_OFF_ROOT_MAC,
  ENC_OFF_SIZE,
  ENCRYPTED_PART_SIZE,
  FILE_ID,
  MAC_SIZE,
  METADATA_DATA_SIZE,
  MHT_CHILDREN_OFFSET,
  NODE_SIZE,
  NONCE_SIZE,
  OFF_ENCRYPTED_V1,
  OFF_ENCRYPTED_V2,
  OFF_FLAGS,
  OFF_MAC,
  OFF_MAJOR,
  OFF_MINOR,
  OFF_NONCE,
  PATH_FIELD_SIZE,
  ZERO_IV,
  classifyNode,
  pfLayout,
} from './format.js';
import { EnclavifyError } from '../../oci/errors.js';

/** Options of {@link decryptProtectedFile} and {@link verifyProtectedFile}. */
export interface ReadProtectedFileOptions {
  /** The encrypted file: a Readable (or any async/sync iterable of chunks), or its bytes. */
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array;
  /** The 16-byte wrap key. */
  wrapKey: Uint8Array;
  /** The path the file must have stored (path binding), as Gramine would open it. */
  path: string;
  /** Crypto implementation; default node:crypto. */
  backend?: CryptoBackend;
}

/** What a successful read established. */
export interface ProtectedFileInfo {
  /** The stored (and expected) path. */
  path: string;
  /** Content size in bytes. */
  plainSize: number;
  /** Size of the encrypted file. */
  diskSize: number;
  /** Format version found, e.g. `2.0`. */
  version: string;
}

/** Splits a byte stream into 4096-byte nodes; returns the count of trailing bytes (< 4096). */
async function* nodesOf(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array,
): AsyncGenerator<Uint8Array, number> {
  const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array ? [source] : source;
  const node = new Uint8Array(NODE_SIZE);
  let fill = 0;
  for await (const chunk of chunks) {
    if (!(chunk instanceof Uint8Array)) throw new EnclavifyError('BAD_ARGUMENT', 'encrypted file source must yield bytes (Buffer/Uint8Array), not strings');
    let off = 0;
    while (off < chunk.length) {
      if (fill === 0 && chunk.length - off >= NODE_SIZE) {
        yield chunk.subarray(off, off + NODE_SIZE);
        off += NODE_SIZE;
        continue;
      }
      const n = Math.min(NODE_SIZE - fill, chunk.length - off);
      node.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === NODE_SIZE) {
        yield node;
        fill = 0;
      }
    }
  }
  return fill;
}

/** Parsed plaintext header and decrypted metadata. */
interface Metadata {
  version: string;
  plainSize: number;
  rootPair: Uint8Array;
  data: Uint8Array;
}

function openMetadata(node0: Uint8Array, backend: CryptoBackend, wrapKey: Uint8Array, path: string): Metadata {
  const where: PfErrorLocation = { kind: 'metadata', index: 0, physical: 0 };
  for (let i = 0; i < FILE_ID.length; i++) {
    if (node0[i] !== FILE_ID[i]) throw new PfError('PF_FORMAT', path, 'not a Gramine encrypted file (bad magic, expected "GRAFS_PF")', where);
  }
  const major = node0[OFF_MAJOR];
  const minor = node0[OFF_MINOR];
  const version = `${major}.${minor}`;
  let encOff: number;
  if (major === 2) {
    encOff = OFF_ENCRYPTED_V2;
    const flags = node0[OFF_FLAGS];
    if (flags & 1) throw new PfError('PF_FORMAT', path, 'an update of this file was interrupted (write-pending flag set); it needs recovery', where);
    if (flags !== 0) throw new PfError('PF_FORMAT', path, `unknown feature flags 0x${flags.toString(16)}`, where);
  } else if (major === 1) {
    encOff = OFF_ENCRYPTED_V1;
  } else {
    throw new PfError('PF_FORMAT', path, `unsupported format version ${version} (supported: 1.x, 2.x)`, where);
  }
  const nonce = node0.subarray(OFF_NONCE, OFF_NONCE + NONCE_SIZE);
  const mac = node0.subarray(OFF_MAC, OFF_MAC + MAC_SIZE);
  const metaKey = deriveMetadataKey(backend, wrapKey, nonce);
  let meta: Uint8Array;
  try {
    meta = backend.aesGcmDecrypt(metaKey, ZERO_IV, node0.subarray(encOff, encOff + ENCRYPTED_PART_SIZE), mac);
  } catch (err) {
    if (!(err instanceof GcmAuthError)) throw err;
    throw new PfError('PF_BAD_MAC', path, 'metadata MAC mismatch: wrong key, or the metadata node was modified', where);
  } finally {
    metaKey.fill(0);
  }

  const nul = meta.subarray(0, PATH_FIELD_SIZE).indexOf(0);
  if (nul < 0) throw new PfError('PF_FORMAT', path, 'stored path is not NUL-terminated', where);
  const stored = meta.subarray(0, nul);
  const expected = new TextEncoder().encode(path);
  if (stored.length !== expected.length || !stored.every((b, i) => b === expected[i])) {
    const storedText = new TextDecoder().decode(stored);
    throw new PfError('PF_PATH_MISMATCH', path, `stored path ${JSON.stringify(storedText)} differs from the expected path (file swapped or renamed?)`, where);
  }
  const size = new DataView(meta.buffer, meta.byteOffset).getBigUint64(ENC_OFF_SIZE, true);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new PfError('PF_FORMAT', path, `stored size ${size} is implausible`, where);
  const plainSize = Number(size);
  return {
    version,
    plainSize,
    rootPair: meta.slice(ENC_OFF_ROOT_KEY, ENC_OFF_ROOT_MAC + 16),
    data: meta.subarray(ENC_OFF_DATA, ENC_OFF_DATA + Math.min(plainSize, METADATA_DATA_SIZE)),
  };
}

/**
 * Decrypts and authenticates an encrypted file, yielding its content in order. The generator's
 * return value describes the file. Throws {@link PfError} on the first problem: `PF_FORMAT`,
 * `PF_BAD_MAC` (metadata or node N), `PF_PATH_MISMATCH`, `PF_TRUNCATED`, `PF_OVERLONG`.
 */
export async function* decryptProtectedFile(opts: ReadProtectedFileOptions): AsyncGenerator<Uint8Array, ProtectedFileInfo> {
  const backend = opts.backend ?? defaultBackend;
  const { path } = opts;
  checkLength('wrap key', opts.wrapKey, 16);
  const nodes = nodesOf(opts.source);
  try {
    return yield* readNodes(nodes, backend, opts.wrapKey, path);
  } finally {
    // On an error or an early stop, release the source (e.g. close a file stream).
    await nodes.return(0);
  }
}

async function* readNodes(
  nodes: AsyncGenerator<Uint8Array, number>,
  backend: CryptoBackend,
  wrapKey: Uint8Array,
  path: string,
): AsyncGenerator<Uint8Array, ProtectedFileInfo> {
  let step = await nodes.next();
  if (step.done) {
    throw new PfError('PF_TRUNCATED', path, `file is ${step.value} bytes, shorter than the ${NODE_SIZE}-byte metadata node`);
  }
  const meta = openMetadata(step.value, backend, wrapKey, path);
  const layout = pfLayout(meta.plainSize);
  const sizeNote = `its stored content size ${meta.plainSize} requires ${layout.diskSize} bytes on disk`;
  if (meta.data.length > 0) yield meta.data;

  let groupPairs: Uint8Array = new Uint8Array(0); // data-node pairs of the current MHT node
  const childPairs = new Map<number, Uint8Array>(); // pairs of MHT nodes announced but not yet read
  let physical = 1;
  for (;;) {
    step = await nodes.next();
    if (step.done) break;
    if (physical >= layout.totalNodes) {
      throw new PfError('PF_OVERLONG', path, `file has more than ${layout.totalNodes} nodes; ${sizeNote}`);
    }
    const what = classifyNode(physical);
    if (what.kind === 'mht') {
      const pair = what.mht === 0 ? meta.rootPair : childPairs.get(what.mht);
      childPairs.delete(what.mht);
      if (!pair) throw new EnclavifyError('INTERNAL', `internal: no key for MHT node ${what.mht}`);
      const plain = openNode(backend, pair, step.value, path, { kind: 'mht', index: what.mht, physical });
      groupPairs = plain.subarray(0, MHT_CHILDREN_OFFSET);
      // Remember the pairs of this node's children that exist; they come later on disk.
      for (let slot = 0; slot < CHILD_MHTS_PER_MHT; slot++) {
        const child = what.mht * CHILD_MHTS_PER_MHT + 1 + slot;
        if (child >= layout.mhtNodes) break;
        const off = MHT_CHILDREN_OFFSET + slot * CRYPTO_PAIR_SIZE;
        childPairs.set(child, plain.slice(off, off + CRYPTO_PAIR_SIZE));
      }
    } else {
      const slot = (what.data % DATA_NODES_PER_MHT) * CRYPTO_PAIR_SIZE;
      const pair = groupPairs.subarray(slot, slot + CRYPTO_PAIR_SIZE);
      const plain = openNode(backend, pair, step.value, path, { kind: 'data', index: what.data, physical });
      const start = METADATA_DATA_SIZE + what.data * NODE_SIZE;
      yield plain.subarray(0, Math.min(NODE_SIZE, meta.plainSize - start));
    }
    physical++;
  }
  const trailing = step.value;
  if (physical < layout.totalNodes) {
    const got = physical * NODE_SIZE + trailing;
    throw new PfError('PF_TRUNCATED', path, `file ends after ${got} bytes; ${sizeNote}`, undefined);
  }
  if (trailing > 0) {
    throw new PfError('PF_OVERLONG', path, `file has ${trailing} bytes after its last node; ${sizeNote}`);
  }
  return { path, plainSize: meta.plainSize, diskSize: layout.diskSize, version: meta.version };
}

function openNode(backend: CryptoBackend, pair: Uint8Array, node: Uint8Array, path: string, where: PfErrorLocation): Uint8Array {
  try {
    return backend.aesGcmDecrypt(pair.subarray(0, 16), ZERO_IV, node, pair.subarray(16, 32));
  } catch (err) {
    if (!(err instanceof GcmAuthError)) throw err;
    const name = where.kind === 'mht' ? 'MHT' : 'data';
    throw new PfError('PF_BAD_MAC', path, `${name} node ${where.index} (physical node ${where.physical}) MAC mismatch: the node was modified or moved`, where);
  }
}

/** Result of {@link verifyProtectedFile}: {@link ProtectedFileInfo} plus the content's SHA-256. */
export interface VerifiedProtectedFile extends ProtectedFileInfo {
  /** SHA-256 of the decrypted content, lowercase hex. */
  sha256: string;
}

/**
 * Reads a whole encrypted file, checking every MAC, the path binding and the size; returns what it
 * found. Throws {@link PfError} like {@link decryptProtectedFile}.
 */
export async function verifyProtectedFile(opts: ReadProtectedFileOptions): Promise<VerifiedProtectedFile> {
  const backend = opts.backend ?? defaultBackend;
  const hash = backend.createSha256();
  const it = decryptProtectedFile({ ...opts, backend });
  for (;;) {
    const step = await it.next();
    if (step.done) return { ...step.value, sha256: Buffer.from(hash.digest()).toString('hex') };
    hash.update(step.value);
  }
}

/** Decrypts a whole (small) encrypted file into memory. */
export async function decryptProtectedFileBytes(opts: ReadProtectedFileOptions): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of decryptProtectedFile(opts)) parts.push(new Uint8Array(part));
  return new Uint8Array(Buffer.concat(parts));
}
