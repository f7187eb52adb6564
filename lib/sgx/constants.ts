/**
 * Numeric facts of the SGX architecture and of Gramine 1.9's in-enclave structures that the
 * measurement and SIGSTRUCT depend on. The values are those Gramine 1.9 (commit ff71d7a) uses
 * (see fixtures/gramine-sign/gramine-1.9-constants.json); a different Gramine version may move
 * them, which changes MRENCLAVE.
 */

/** Size of an EPC page. */
export const PAGE_SIZE = 4096;

// --- SECS attributes (SDM vol. 3D, "ATTRIBUTES") ---
/** ATTRIBUTES.DEBUG: the enclave can be debugged (never for production). */
export const SGX_FLAGS_DEBUG = 0x2n;
/** ATTRIBUTES.MODE64BIT: the enclave runs in 64-bit mode (always set by Gramine on x86-64). */
export const SGX_FLAGS_MODE64BIT = 0x4n;
/** XFRM bits for the legacy x87 + SSE state, always enabled. */
export const SGX_XFRM_LEGACY = 0x3n;
/** XFRM bit for AVX. */
export const SGX_XFRM_AVX = 0x4n;
/** XFRM bits for MPX (BNDREGS, BNDCSR). */
export const SGX_XFRM_MPX = 0x18n;
/** XFRM bits for AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM). */
export const SGX_XFRM_AVX512 = 0xe4n;
/** XFRM bit for PKRU. */
export const SGX_XFRM_PKRU = 0x200n;
/** XFRM bits for AMX (XTILECFG, XTILEDATA). */
export const SGX_XFRM_AMX = 0x60000n;
/** MISCSELECT.EXINFO: report page-fault information in the SSA. */
export const SGX_MISCSELECT_EXINFO = 0x1;
/** Default SIGSTRUCT ATTRIBUTEMASK.FLAGS: every flag must match. */
export const SGX_FLAGS_MASK_CONST = 0xffffffffffffffffn;
/** Default SIGSTRUCT ATTRIBUTEMASK.XFRM (Gramine 1.9): AVX, AVX-512 and AMX bits are free. */
export const SGX_XFRM_MASK_CONST = 0xfffffffffff9ff1bn;
/** Default SIGSTRUCT MISCMASK: every MISCSELECT bit must match. */
export const SGX_MISCSELECT_MASK_CONST = 0xffffffff;

// --- RSA key (SDM: SIGSTRUCT is signed with RSA-3072, e = 3) ---
/** Size in bytes of the SIGSTRUCT modulus, signature, Q1 and Q2. */
export const SE_KEY_SIZE = 384;
/** Required RSA key size in bits. */
export const SGX_RSA_KEY_BITS = 3072;
/** Required RSA public exponent. */
export const SGX_RSA_EXPONENT = 3;

// --- SIGSTRUCT layout (SDM vol. 3D, table "Layout of Enclave Signature Structure") ---
/** Byte offsets of the SIGSTRUCT fields. */
export const SIGSTRUCT = {
  SIZE: 1808,
  HEADER: 0,
  VENDOR: 16,
  DATE: 20,
  HEADER2: 24,
  SWDEFINED: 40,
  MODULUS: 128,
  EXPONENT: 512,
  SIGNATURE: 516,
  MISC_SELECT: 900,
  MISC_MASK: 904,
  CET_ATTRIBUTES: 908,
  CET_ATTRIBUTES_MASK: 909,
  ISV_FAMILY_ID: 912,
  ATTRIBUTES: 928,
  ATTRIBUTE_MASK: 944,
  ENCLAVE_HASH: 960,
  ISVEXT_PROD_ID: 1008,
  ISV_PROD_ID: 1024,
  ISV_SVN: 1026,
  /** Start of the 12 reserved bytes after ISVSVN; they are outside the signed data. */
  RESERVED4: 1028,
  Q1: 1040,
  Q2: 1424,
} as const;

/** The fixed 16-byte HEADER of a SIGSTRUCT. */
export const SIGSTRUCT_HEADER = Uint8Array.of(6, 0, 0, 0, 0xe1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0);
/** The fixed 16-byte HEADER2 of a SIGSTRUCT. */
export const SIGSTRUCT_HEADER2 = Uint8Array.of(1, 1, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 1, 0, 0, 0);

// --- SECINFO flags used in EADD records ---
/** Page is readable. */
export const SECINFO_R = 0x1;
/** Page is writable. */
export const SECINFO_W = 0x2;
/** Page is executable. */
export const SECINFO_X = 0x4;
/** Page type TCS. */
export const SECINFO_TCS = 0x100;
/** Page type REG. */
export const SECINFO_REG = 0x200;

// --- TCS fields (SDM vol. 3D, "Thread Control Structure") ---
/** Byte offsets inside a TCS page. */
export const TCS = {
  SIZE: 4096,
  OSSA: 16,
  NSSA: 28,
  OENTRY: 32,
  OGS_BASE: 56,
  OFS_LIMIT: 64,
  OGS_LIMIT: 68,
} as const;

/** Size of the GPR area at the end of each SSA frame. */
export const SGX_GPR_SIZE = 184;

// --- Gramine's per-thread TLS page (struct enclave_tls), offsets of the fields the signer sets ---
/** Byte offsets inside the per-thread TLS page the signer fills. */
export const GRAMINE_TLS = {
  SELF: 0,
  STACK_PROTECTOR_CANARY: 8,
  ENCLAVE_SIZE: 272,
  TCS_OFFSET: 280,
  INITIAL_STACK_ADDR: 288,
  SIG_STACK_LOW: 304,
  SIG_STACK_HIGH: 312,
  SSA: 328,
  GPR: 336,
  MANIFEST_SIZE: 416,
  HEAP_MIN: 424,
  HEAP_MAX: 432,
} as const;

/** Gramine's initial stack-protector canary (overwritten at run time). */
export const STACK_PROTECTOR_CANARY_DEFAULT = 0xbadbadbadbadn;

// --- Gramine 1.9 enclave layout ---
/** Number of SSA frames per thread. */
export const SSA_FRAME_NUM = 2;
/** Size of one SSA frame. */
export const SSA_FRAME_SIZE = 16384;
/** Size of each thread's enclave stack. */
export const ENCLAVE_STACK_SIZE = 262144;
/** Size of each thread's signal stack. */
export const ENCLAVE_SIG_STACK_SIZE = 65536;
/** Enclave base address (Gramine places enclaves at 0). */
export const DEFAULT_ENCLAVE_BASE = 0;
/** Lowest address of the enclave heap (below it nothing is mapped). */
export const MMAP_MIN_ADDR = 65536;

// --- Gramine 1.9 manifest defaults (python/graminelibos/manifest.py) ---
/** Default `sgx.enclave_size` without EDMM. */
export const DEFAULT_ENCLAVE_SIZE_NO_EDMM = '256M';
/** Default `sgx.enclave_size` with EDMM. */
export const DEFAULT_ENCLAVE_SIZE_WITH_EDMM = '1024G';
/** Default `sgx.max_threads`. */
export const DEFAULT_THREAD_NUM = 4;
