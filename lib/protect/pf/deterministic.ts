/**
 * Where the writer's secret values come from: a CSPRNG (default), or, in deterministic mode, HKDF
 * from a master key, the file's path and the plaintext being sealed, so that the same input and
 * key give byte-identical output (reproducible builds).
 *
 * Why deterministic mode is safe with GCM's fixed all-zero IV: a node key is derived from
 * SHA-256 of exactly the plaintext it seals (plus path and position), so a key is only ever used
 * for one plaintext; sealing that plaintext again yields the same ciphertext and reveals nothing
 * but equality. See docs/encrypted-files.md.
 */
import type { CryptoBackend } from '../../crypto/backend.js';

/** HKDF salt: a fixed domain label for this construction and format version. */
const SALT = new TextEncoder().encode('enclavify/gramine-pf/v2/deterministic');
const LABEL_NODE = new TextEncoder().encode('node');
const LABEL_META = new TextEncoder().encode('meta');

/** Kind byte in the HKDF info. */
const KIND_METADATA = 0;
const KIND_MHT = 1;
const KIND_DATA = 2;

/** Supplies node keys and the metadata nonce for one file. */
export interface SecretSource {
  /** Key for the MHT or data node at physical node `physical` whose plaintext is `plaintext`. */
  nodeKey(kind: 'mht' | 'data', physical: number, plaintext: Uint8Array): Uint8Array;
  /** The 32-byte metadata key nonce for the metadata plaintext (encrypted part) `plaintext`. */
  metadataNonce(plaintext: Uint8Array): Uint8Array;
}

/** Fresh CSPRNG values for every node and the metadata nonce (what Gramine itself does). */
export function randomSecrets(backend: CryptoBackend): SecretSource {
  return {
    nodeKey: () => backend.randomBytes(16),
    metadataNonce: () => backend.randomBytes(32),
  };
}

/**
 * Deterministic values: `HKDF-SHA256(ikm = masterKey, salt = SALT, info, L)` with
 * `info = label[4] || kind u8 || physical u64le || SHA-256(path) || SHA-256(plaintext)`,
 * L = 16 for node keys (label `node`) and 32 for the metadata nonce (label `meta`).
 */
export function deterministicSecrets(opts: { backend: CryptoBackend; masterKey: Uint8Array; path: string }): SecretSource {
  const { backend, masterKey } = opts;
  if (!(masterKey instanceof Uint8Array) || masterKey.length < 16) {
    throw new RangeError('deterministic mode needs a master key of at least 16 bytes');
  }
  const pathHash = backend.sha256(new TextEncoder().encode(opts.path));
  const derive = (label: Uint8Array, kind: number, physical: number, plaintext: Uint8Array, length: number) => {
    const info = new Uint8Array(4 + 1 + 8 + 32 + 32);
    info.set(label, 0);
    info[4] = kind;
    new DataView(info.buffer).setBigUint64(5, BigInt(physical), true);
    info.set(pathHash, 13);
    info.set(backend.sha256(plaintext), 45);
    return backend.hkdfSha256(masterKey, SALT, info, length);
  };
  return {
    nodeKey: (kind, physical, plaintext) =>
      derive(LABEL_NODE, kind === 'mht' ? KIND_MHT : KIND_DATA, physical, plaintext, 16),
    metadataNonce: (plaintext) => derive(LABEL_META, KIND_METADATA, 0, plaintext, 32),
  };
}
