/**
 * Layout of Gramine encrypted files ("protected files"), format version 2.0: constants, node
 * placement and the on-disk size. See docs/encrypted-files.md for the format in prose.
 *
 * A file is a sequence of 4096-byte nodes: node 0 holds metadata and the first 3072 bytes of
 * content; then, per group, one MHT node followed by up to 96 data nodes.
 */

/** Size of every node on disk. */
export const NODE_SIZE = 4096;
/** Content bytes stored inside the metadata node. */
export const METADATA_DATA_SIZE = 3072;
/** Data nodes whose key/tag an MHT node holds. */
export const DATA_NODES_PER_MHT = 96;
/** Child MHT nodes whose key/tag an MHT node holds. */
export const CHILD_MHTS_PER_MHT = 32;
/** Bytes of a {key[16], mac[16]} pair. */
export const CRYPTO_PAIR_SIZE = 32;
/** Offset of the child-MHT pairs inside an MHT node's plaintext. */
export const MHT_CHILDREN_OFFSET = DATA_NODES_PER_MHT * CRYPTO_PAIR_SIZE; // 3072

/** `file_id`, the bytes `GRAFS_PF` at offset 0. */
export const FILE_ID = new Uint8Array([0x47, 0x52, 0x41, 0x46, 0x53, 0x5f, 0x50, 0x46]);
/** Format version this library writes. */
export const MAJOR_VERSION = 2;
export const MINOR_VERSION = 0;

/** Plaintext header offsets (all versions). */
export const OFF_MAJOR = 8;
export const OFF_MINOR = 9;
export const OFF_NONCE = 10;
export const NONCE_SIZE = 32;
export const OFF_MAC = 42;
export const MAC_SIZE = 16;
/** Version 2 only: feature flags byte; bit 0 means an update was interrupted (needs recovery). */
export const OFF_FLAGS = 58;
/** Start of the encrypted part in version 2 (59) and version 1 (58, no flags byte). */
export const OFF_ENCRYPTED_V2 = 59;
export const OFF_ENCRYPTED_V1 = 58;

/** Layout of the encrypted part of the metadata (its plaintext). */
export const PATH_FIELD_SIZE = 772;
export const ENC_OFF_SIZE = PATH_FIELD_SIZE; // u64 file size
export const ENC_OFF_ROOT_KEY = ENC_OFF_SIZE + 8;
export const ENC_OFF_ROOT_MAC = ENC_OFF_ROOT_KEY + 16;
export const ENC_OFF_DATA = ENC_OFF_ROOT_MAC + 16;
/** Size of the encrypted part: 772 + 8 + 16 + 16 + 3072. */
export const ENCRYPTED_PART_SIZE = ENC_OFF_DATA + METADATA_DATA_SIZE; // 3884

/** Node counts of a file holding `plainSize` content bytes. */
export interface PfLayout {
  /** Content size in bytes. */
  plainSize: number;
  /** Number of data nodes (content beyond the first 3072 bytes, in 4096-byte nodes). */
  dataNodes: number;
  /** Number of MHT nodes (0 when the content fits in the metadata node). */
  mhtNodes: number;
  /** Total nodes including the metadata node. */
  totalNodes: number;
  /** Size on disk: totalNodes * 4096. */
  diskSize: number;
}

/** Throws unless `n` is a non-negative safe integer; `what` names the value. */
function checkSize(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
}

/** Node counts and on-disk size for `plainSize` content bytes. */
export function pfLayout(plainSize: number): PfLayout {
  checkSize('plaintext size', plainSize);
  const dataNodes = plainSize > METADATA_DATA_SIZE ? Math.ceil((plainSize - METADATA_DATA_SIZE) / NODE_SIZE) : 0;
  const mhtNodes = Math.ceil(dataNodes / DATA_NODES_PER_MHT);
  const totalNodes = 1 + mhtNodes + dataNodes;
  return { plainSize, dataNodes, mhtNodes, totalNodes, diskSize: totalNodes * NODE_SIZE };
}

/**
 * Size on disk of an encrypted file whose content is `plainSize` bytes, e.g. 0 or 30 -> 4096,
 * 3073 -> 12288, 10000 -> 16384, 396288 -> 401408, 2,000,000 -> 2,027,520.
 */
export function protectedFileSize(plainSize: number): number {
  return pfLayout(plainSize).diskSize;
}

/** Physical node number of logical data node `d` (the one holding content offset 3072 + 4096*d). */
export function dataNodePhysical(d: number): number {
  return d + 2 + Math.floor(d / DATA_NODES_PER_MHT);
}

/** Physical node number of MHT node `l` (0 is the root, at physical node 1). */
export function mhtNodePhysical(l: number): number {
  return 1 + (DATA_NODES_PER_MHT + 1) * l;
}

/** Parent MHT node of MHT node `l > 0`, and the child slot (0..31) it occupies there. */
export function mhtParent(l: number): { parent: number; slot: number } {
  return { parent: Math.floor((l - 1) / CHILD_MHTS_PER_MHT), slot: (l - 1) % CHILD_MHTS_PER_MHT };
}

/** What physical node `p >= 1` holds: an MHT node or a data node, with its logical number. */
export function classifyNode(p: number): { kind: 'mht'; mht: number } | { kind: 'data'; data: number; mht: number } {
  const group = Math.floor((p - 1) / (DATA_NODES_PER_MHT + 1));
  const inGroup = (p - 1) % (DATA_NODES_PER_MHT + 1);
  if (inGroup === 0) return { kind: 'mht', mht: group };
  return { kind: 'data', data: group * DATA_NODES_PER_MHT + inGroup - 1, mht: group };
}

/** The IV every node and the metadata use: twelve zero bytes (keys are never reused instead). */
export const ZERO_IV = new Uint8Array(12);
