/**
 * Streaming writer of Gramine encrypted files (format 2.0). Content is consumed once, node by node;
 * data nodes are sealed as they fill, MHT nodes bottom-up once all content is in, the metadata node
 * last. Output is staged in memory (small files) or in a temporary file (larger ones).
 */
import type { Readable } from 'node:stream';
import type { CryptoBackend } from '../../crypto/backend.js';
import { checkLength } from '../../crypto/backend.js';
import { defaultBackend } from '../../crypto/default.js';
import { deriveMetadataKey } from '../../crypto/sp800-108.js';
import { deterministicSecrets, randomSecrets } from './deterministic.js';
import type { SecretSource } from './deterministic.js';
import { PfError } from './errors.js';
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
  MAJOR_VERSION,
  METADATA_DATA_SIZE,
  MHT_CHILDREN_OFFSET,
  MINOR_VERSION,
  NODE_SIZE,
  OFF_ENCRYPTED_V2,
  OFF_FLAGS,
  OFF_MAC,
  OFF_MAJOR,
  OFF_MINOR,
  OFF_NONCE,
  PATH_FIELD_SIZE,
  ZERO_IV,
  dataNodePhysical,
  mhtNodePhysical,
  pfLayout,
} from './format.js';
import { FileStaging, MemoryStaging } from './staging.js';
import type { Staging } from './staging.js';
import { EnclavifyError } from '../../oci/errors.js';

/** Default largest on-disk size staged in memory; larger files go to a temporary file. */
export const DEFAULT_MEMORY_THRESHOLD = 1 << 20;

/** Options of {@link encryptProtectedFile}. */
export interface EncryptProtectedFileOptions {
  /** The 16-byte wrap key (Gramine's key-derivation key for the mount). */
  wrapKey: Uint8Array;
  /** The path stored in the file, which Gramine checks on open (the file's host path, e.g. `/app/data/x`). */
  path: string;
  /** Content size in bytes; `plaintext` must yield exactly this many bytes. */
  size: number;
  /** The content, e.g. a tar entry's stream or a Readable. */
  plaintext: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Crypto implementation; default node:crypto. */
  backend?: CryptoBackend | undefined;
  /** Directory for the temporary staging file of large files; default the OS temp dir. */
  tmpDir?: string | undefined;
  /** Largest on-disk size staged in memory (bytes); default 1 MiB. */
  memoryThreshold?: number | undefined;
  /**
   * Reproducible output: derive node keys and the metadata nonce with HKDF from `masterKey`, the
   * path and each node's plaintext instead of drawing them at random. Same input + keys = same bytes.
   * Use a key dedicated to this purpose (not the wrap key). See docs/encrypted-files.md.
   */
  deterministic?: { masterKey: Uint8Array } | undefined;
}

/** An encrypted file, staged and ready to be read out. Call `dispose` when done. */
export interface ProtectedFile {
  /** The path stored in the file. */
  readonly path: string;
  /** Content size in bytes. */
  readonly plainSize: number;
  /** Size of the encrypted file on disk, = protectedFileSize(plainSize). */
  readonly size: number;
  /** A Readable of the encrypted bytes; may be called more than once (before `dispose`). */
  stream(): Readable;
  /** Frees memory or removes the temporary file. Idempotent. */
  dispose(): Promise<void>;
}

/** Encodes the stored path; it must fit its 772-byte NUL-terminated field. */
function encodePath(path: string): Uint8Array {
  if (typeof path !== 'string' || path.length === 0) throw new PfError('PF_INPUT', String(path), 'the stored path is empty');
  const bytes = new TextEncoder().encode(path);
  if (bytes.includes(0)) throw new PfError('PF_INPUT', path, 'the stored path contains a NUL byte');
  if (bytes.length >= PATH_FIELD_SIZE) {
    throw new PfError('PF_INPUT', path, `the stored path is ${bytes.length} bytes, at most ${PATH_FIELD_SIZE - 1} fit`);
  }
  return bytes;
}

/**
 * Encrypts `plaintext` into a Gramine encrypted file bound to `path`. Consumes the content once;
 * memory stays bounded (one node plus 32 bytes per MHT node) for files staged on disk.
 *
 * @throws PfError `PF_INPUT` for an unusable path or when the content is not `size` bytes.
 */
export async function encryptProtectedFile(opts: EncryptProtectedFileOptions): Promise<ProtectedFile> {
  const backend = opts.backend ?? defaultBackend;
  const { path, size } = opts;
  const pathBytes = encodePath(path);
  checkLength('wrap key', opts.wrapKey, 16);
  if (!Number.isSafeInteger(size) || size < 0) throw new PfError('PF_INPUT', path, `invalid content size ${size}`);
  const layout = pfLayout(size);
  const secrets: SecretSource = opts.deterministic
    ? deterministicSecrets({ backend, masterKey: opts.deterministic.masterKey, path })
    : randomSecrets(backend);

  const threshold = opts.memoryThreshold ?? DEFAULT_MEMORY_THRESHOLD;
  const staging: Staging =
    layout.diskSize <= threshold ? new MemoryStaging(layout.diskSize) : await FileStaging.create({ tmpDir: opts.tmpDir, backend, size: layout.diskSize, what: opts.path });
  try {
    await writeNodes({ backend, secrets, staging, layout, pathBytes, path, wrapKey: opts.wrapKey, plaintext: opts.plaintext });
  } catch (err) {
    await staging.dispose();
    throw err;
  }
  return {
    path,
    plainSize: size,
    size: layout.diskSize,
    stream: () => staging.stream(),
    dispose: () => staging.dispose(),
  };
}

interface WriteState {
  backend: CryptoBackend;
  secrets: SecretSource;
  staging: Staging;
  layout: ReturnType<typeof pfLayout>;
  pathBytes: Uint8Array;
  path: string;
  wrapKey: Uint8Array;
  plaintext: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

async function writeNodes(s: WriteState): Promise<void> {
  const { backend, secrets, staging, layout, path } = s;
  const size = layout.plainSize;

  // Plaintext of the metadata's encrypted part: path, size, root MHT key/tag, first 3072 bytes.
  const meta = new Uint8Array(ENCRYPTED_PART_SIZE);
  meta.set(s.pathBytes, 0);
  new DataView(meta.buffer).setBigUint64(ENC_OFF_SIZE, BigInt(size), true);
  let metaFill = 0;

  const node = new Uint8Array(NODE_SIZE);
  let nodeFill = 0;
  let dataIndex = 0; // next logical data node
  const groupPairs = new Uint8Array(DATA_NODES_PER_MHT * CRYPTO_PAIR_SIZE); // current MHT's data pairs
  // key||tag of every sealed MHT node (32 bytes each): what its parent (or the metadata) needs.
  const mhtPairs = new Uint8Array(layout.mhtNodes * CRYPTO_PAIR_SIZE);

  const sealData = async (plain: Uint8Array) => {
    const physical = dataNodePhysical(dataIndex);
    const key = secrets.nodeKey('data', physical, plain);
    const { ciphertext, tag } = backend.aesGcmEncrypt(key, ZERO_IV, plain);
    await staging.put(physical, ciphertext);
    const slot = (dataIndex % DATA_NODES_PER_MHT) * CRYPTO_PAIR_SIZE;
    groupPairs.set(key, slot);
    groupPairs.set(tag, slot + 16);
    dataIndex++;
    if (dataIndex % DATA_NODES_PER_MHT === 0 || dataIndex === layout.dataNodes) {
      // The group is complete: park its pairs in the MHT node's slot until the MHT is sealed.
      const mht = Math.floor((dataIndex - 1) / DATA_NODES_PER_MHT);
      await staging.park(mhtNodePhysical(mht), groupPairs);
      groupPairs.fill(0);
    }
  };

  let total = 0;
  const tooMuch = () => new PfError('PF_INPUT', path, `content is longer than the declared size ${size}`);
  for await (const chunk of s.plaintext) {
    if (!(chunk instanceof Uint8Array)) throw new PfError('PF_INPUT', path, 'content chunks must be Uint8Array/Buffer');
    total += chunk.length;
    if (total > size) throw tooMuch();
    let off = 0;
    if (metaFill < METADATA_DATA_SIZE) {
      const n = Math.min(METADATA_DATA_SIZE - metaFill, chunk.length);
      meta.set(chunk.subarray(0, n), ENC_OFF_DATA + metaFill);
      metaFill += n;
      off = n;
    }
    while (off < chunk.length) {
      if (nodeFill === 0 && chunk.length - off >= NODE_SIZE) {
        // Whole node available in the chunk: seal it in place, no copy.
        await sealData(chunk.subarray(off, off + NODE_SIZE));
        off += NODE_SIZE;
        continue;
      }
      const n = Math.min(NODE_SIZE - nodeFill, chunk.length - off);
      node.set(chunk.subarray(off, off + n), nodeFill);
      nodeFill += n;
      off += n;
      if (nodeFill === NODE_SIZE) {
        await sealData(node);
        nodeFill = 0;
      }
    }
  }
  if (total !== size) throw new PfError('PF_INPUT', path, `content is ${total} bytes, the declared size is ${size}`);
  if (nodeFill > 0) {
    node.fill(0, nodeFill); // the last data node is zero-padded
    await sealData(node);
  }
  if (dataIndex !== layout.dataNodes) throw new EnclavifyError('INTERNAL', `internal: wrote ${dataIndex} data nodes, expected ${layout.dataNodes}`);

  // MHT nodes bottom-up: children have higher numbers than their parent, so sealing in decreasing
  // order has every child's key/tag ready when its parent is sealed.
  const mhtPlain = new Uint8Array(NODE_SIZE);
  for (let l = layout.mhtNodes - 1; l >= 0; l--) {
    const physical = mhtNodePhysical(l);
    mhtPlain.fill(0);
    mhtPlain.set(await staging.unpark(physical, MHT_CHILDREN_OFFSET), 0);
    const first = l * CHILD_MHTS_PER_MHT + 1;
    const last = Math.min(first + CHILD_MHTS_PER_MHT, layout.mhtNodes); // exclusive
    if (first < last) {
      mhtPlain.set(mhtPairs.subarray(first * CRYPTO_PAIR_SIZE, last * CRYPTO_PAIR_SIZE), MHT_CHILDREN_OFFSET);
    }
    const key = secrets.nodeKey('mht', physical, mhtPlain);
    const { ciphertext, tag } = backend.aesGcmEncrypt(key, ZERO_IV, mhtPlain);
    await staging.put(physical, ciphertext);
    mhtPairs.set(key, l * CRYPTO_PAIR_SIZE);
    mhtPairs.set(tag, l * CRYPTO_PAIR_SIZE + 16);
  }
  mhtPlain.fill(0);

  if (layout.mhtNodes > 0) {
    meta.set(mhtPairs.subarray(0, 16), ENC_OFF_ROOT_KEY);
    meta.set(mhtPairs.subarray(16, 32), ENC_OFF_ROOT_MAC);
  }
  mhtPairs.fill(0);

  const nonce = secrets.metadataNonce(meta);
  const metaKey = deriveMetadataKey(backend, s.wrapKey, nonce);
  const { ciphertext, tag } = backend.aesGcmEncrypt(metaKey, ZERO_IV, meta);
  metaKey.fill(0);
  meta.fill(0);

  const node0 = new Uint8Array(NODE_SIZE);
  node0.set(FILE_ID, 0);
  node0[OFF_MAJOR] = MAJOR_VERSION;
  node0[OFF_MINOR] = MINOR_VERSION;
  node0.set(nonce, OFF_NONCE);
  node0.set(tag, OFF_MAC);
  node0[OFF_FLAGS] = 0;
  node0.set(ciphertext, OFF_ENCRYPTED_V2);
  await staging.put(0, node0);
  await staging.finish();
}
