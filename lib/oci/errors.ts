/**
 * Errors as an API: every error the library throws is an {@link EnclavifyError} whose `code` is a
 * key of {@link ERROR_CODES}. The table says what each code means and which exit code the CLI
 * uses for it; `npm run docs:errors` turns it into docs/errors.md.
 *
 * A new error path = a new line here (one line per code, sorted A–Z, so that merges stay
 * trivial) + `npm run docs:errors`. Messages name the image, blob or file and what is wrong; never
 * a key, a password, a token, or bytes of an unverified blob.
 */

/**
 * A code of {@link ERROR_CODES}: the stable part of an error programs switch on. Written out (the
 * declarations name no private table); the compiler checks it against the table both ways (a
 * missing or an extra code in the table does not compile).
 */
export type ErrorCode =
  | 'ABORTED'
  | 'AMBIGUOUS'
  | 'BAD_ARCHIVE'
  | 'BAD_ARGUMENT'
  | 'BAD_ARTIFACT'
  | 'BAD_CACHE_ENTRY'
  | 'BAD_CHART'
  | 'BAD_CONFIG'
  | 'BAD_DIGEST'
  | 'BAD_HISTORY'
  | 'BAD_INDEX'
  | 'BAD_JSON'
  | 'BAD_LAYER'
  | 'BAD_LAYER_INDEX'
  | 'BAD_LAYOUT'
  | 'BAD_MANIFEST'
  | 'BAD_OPTIONS'
  | 'BAD_PATH'
  | 'BAD_PLATFORM'
  | 'BAD_POLICY'
  | 'BAD_REFERENCE'
  | 'BAD_TRANSFORM'
  | 'BLOB_DIGEST_MISMATCH'
  | 'BLOB_MISSING'
  | 'BLOB_SIZE_MISMATCH'
  | 'BLOB_SYMLINK'
  | 'BLOB_TOO_LARGE'
  | 'CHART_OUTPUT_CONFLICT'
  | 'CLASSIFY_HARDLINK'
  | 'CLASSIFY_STARTUP_ENCRYPTED'
  | 'CLASSIFY_SYMLINK'
  | 'CRYPTO_AUTH_FAILED'
  | 'DISPOSED'
  | 'ELF_INVALID'
  | 'ELOOP'
  | 'ENCRYPTED_LAYER'
  | 'ENCRYPT_INTERNAL'
  | 'ENCRYPT_NO_KEY'
  | 'ENCRYPT_STALE_CLASSIFICATION'
  | 'ENCRYPT_STALE_VIEW'
  | 'EXISTS'
  | 'FILE_CHANGED'
  | 'FS_BAD_PATH'
  | 'FS_NOT_A_FILE'
  | 'FS_NOT_FOUND'
  | 'FS_TOO_LARGE'
  | 'GRAMINE_ALLOWED_COVERS_TRUSTED'
  | 'GRAMINE_BAD_ENTRYPOINT'
  | 'GRAMINE_BAD_FRAGMENT'
  | 'GRAMINE_BAD_MANIFEST'
  | 'GRAMINE_BAD_OPTIONS'
  | 'GRAMINE_BAD_PATH'
  | 'GRAMINE_INSECURE_IN_PRODUCTION'
  | 'GRAMINE_NOT_FOUND'
  | 'GRAMINE_NO_KEY'
  | 'GRAMINE_NO_RUNTIME'
  | 'GRAMINE_PATH_CONFLICT'
  | 'GRAMINE_SIGN_REFUSED'
  | 'GRAMINE_TOO_MANY_PATHS'
  | 'GRAMINE_UNTRUSTED_CODE'
  | 'INTERNAL'
  | 'IO_ERROR'
  | 'JSON_TOO_DEEP'
  | 'KEYS_FILE_INVALID'
  | 'KEYS_FILE_SYMLINK'
  | 'KEY_INVALID'
  | 'KEY_UNKNOWN'
  | 'LAYER_AMBIGUOUS_WHITEOUT'
  | 'LAYER_BAD_HARDLINK'
  | 'LAYER_BAD_INDEX'
  | 'LAYER_BAD_WHITEOUT'
  | 'LAYER_CHANGED'
  | 'LAYER_NOT_A_DIRECTORY'
  | 'LAYER_WRITE_THROUGH_SYMLINK'
  | 'LOCKED'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_LAYER_MISSING'
  | 'MANIFEST_NOT_CANONICAL'
  | 'MANIFEST_REFRESH_ENCRYPTED'
  | 'NOT_A_DIRECTORY'
  | 'NOT_FOUND'
  | 'NO_MRENCLAVE'
  | 'NO_SPACE'
  | 'OCICRYPT_BAD_ANNOTATION'
  | 'OCICRYPT_BAD_JWE'
  | 'OCICRYPT_BAD_KEY'
  | 'OCICRYPT_BAD_RECIPIENT'
  | 'OCICRYPT_HMAC_MISMATCH'
  | 'OCICRYPT_NO_KEY'
  | 'OCICRYPT_UNSUPPORTED'
  | 'PERMISSION_DENIED'
  | 'PF_BAD_MAC'
  | 'PF_FORMAT'
  | 'PF_INPUT'
  | 'PF_OVERLONG'
  | 'PF_PATH_MISMATCH'
  | 'PF_TRUNCATED'
  | 'PIPELINE_ORDER'
  | 'REGISTRY_BAD_RESPONSE'
  | 'REGISTRY_CONNECT'
  | 'REGISTRY_CREDENTIALS'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_HTTP'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_NOT_OCI'
  | 'REGISTRY_RETRIES_EXHAUSTED'
  | 'REGISTRY_TLS'
  | 'REGISTRY_UNAUTHORIZED'
  | 'REGISTRY_UNSUPPORTED'
  | 'RULE_BAD_NAME'
  | 'RULE_BAD_PATH'
  | 'RULE_CONFLICT'
  | 'RULE_NOT_A_DIRECTORY'
  | 'RULE_NOT_A_FILE'
  | 'RULE_SYMLINK'
  | 'SCONE_ARCH_MISMATCH'
  | 'SCONE_BAD_ENTRYPOINT'
  | 'SCONE_BAD_OPTIONS'
  | 'SCONE_BAD_PATH'
  | 'SCONE_BAD_TARGET'
  | 'SCONE_BINARY_MISMATCH'
  | 'SCONE_BINARY_NOT_FOUND'
  | 'SCONE_CONFIG_MISMATCH'
  | 'SCONE_FSPF_UNSUPPORTED'
  | 'SCONE_NO_BINARY'
  | 'SGX_BAD_KEY'
  | 'SGX_BAD_MANIFEST'
  | 'SGX_BAD_OPTIONS'
  | 'SGX_BAD_PAL'
  | 'SGX_BAD_SIGNATURE'
  | 'SGX_BAD_SIGSTRUCT'
  | 'SGX_ENCLAVE_TOO_SMALL'
  | 'SGX_MRENCLAVE_MISMATCH'
  | 'SIGSTRUCT_UNREADABLE'
  | 'STARTUP_NOT_EXECUTABLE'
  | 'STARTUP_NOT_FOUND'
  | 'STARTUP_NO_COMMAND'
  | 'TAR_BAD_CHECKSUM'
  | 'TAR_BAD_ENTRY'
  | 'TAR_BAD_HEADER'
  | 'TAR_BAD_NAME'
  | 'TAR_BAD_NUMBER'
  | 'TAR_PATH_TOO_LONG'
  | 'TAR_SIZE_MISMATCH'
  | 'TAR_TRUNCATED'
  | 'TAR_UNSAFE_PATH'
  | 'TAR_UNSUPPORTED_TYPE'
  | 'TOO_MANY_ENTRIES'
  | 'TRANSFORM_FAILED'
  | 'UNREADABLE'
  | 'UNSUPPORTED_DIGEST'
  | 'UNSUPPORTED_FILE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNSUPPORTED_TRANSPORT'
  | 'USAGE'
  | 'WRITE_FAILED'
  | 'WRITE_THROUGH_SYMLINK'
  | 'ZSTD_UNAVAILABLE';

/**
 * Every error code, with the CLI's exit code (1 failure, 2 usage error, 3 verification findings)
 * and one sentence: what went wrong and what to do.
 */
const TABLE: Record<ErrorCode, ErrorCodeInfo> = {
  ABORTED: { exit: 1, summary: 'The operation was cancelled through its AbortSignal; its streams were closed and its temporary files removed.' },
  AMBIGUOUS: { exit: 1, summary: 'The reference matches more than one image; name one with :TAG, :NAME:TAG or @DIGEST.' },
  BAD_ARCHIVE: { exit: 1, summary: 'The file is not a well-formed docker archive (docker save format): its tar or manifest.json is broken.' },
  BAD_ARGUMENT: { exit: 1, summary: 'A function was called with an argument of the wrong type, size or range (a programming error in the caller).' },
  BAD_ARTIFACT: { exit: 1, summary: 'A pipeline artifact has a path that is absolute or leaves the output directory; transforms must use relative paths.' },
  BAD_CACHE_ENTRY: { exit: 1, summary: 'A scan-cache entry cannot be encoded (it is not stored) or does not decode (it is removed); the layer is scanned as without a cache. Never reported to callers: the cache is best effort.' },
  BAD_CHART: { exit: 1, summary: 'The Helm chart options are invalid (names, ports, volumes, workload type, SGX device mode, --set overrides).' },
  BAD_CONFIG: { exit: 1, summary: 'The image config is malformed or does not match the manifest (rootfs.diff_ids).' },
  BAD_DIGEST: { exit: 1, summary: 'A digest is not of the form ALGORITHM:HEX.' },
  BAD_HISTORY: { exit: 1, summary: 'A transform left the config history out of line with the layers (one non-empty entry per layer).' },
  BAD_INDEX: { exit: 1, summary: 'An image index (index.json or a nested index) is malformed.' },
  BAD_JSON: { exit: 1, summary: 'A JSON document of the image (manifest, config, index, oci-layout) does not parse.' },
  BAD_LAYER: { exit: 1, summary: 'A layer blob cannot be decompressed: the blob is corrupt or not what its media type says.' },
  BAD_LAYER_INDEX: { exit: 1, summary: 'A layer index is out of range for the image.' },
  BAD_LAYOUT: { exit: 1, summary: 'The directory is not a usable OCI image layout (unsupported version, missing index.json, a blob that is not a file, not empty).' },
  BAD_MANIFEST: { exit: 1, summary: 'An image manifest or descriptor is malformed.' },
  BAD_OPTIONS: { exit: 1, summary: 'The options of a transform or function are invalid or contradict each other; the message names the option.' },
  BAD_PATH: { exit: 1, summary: 'A path option is not acceptable (e.g. it has a ".." component).' },
  BAD_PLATFORM: { exit: 2, summary: 'A platform is not of the form OS/ARCH[/VARIANT].' },
  BAD_POLICY: { exit: 1, summary: 'The attestation policy options are invalid (SCONE session, Gramine policy, --volume, --secrets, --injectedfiles); the message names the option.' },
  BAD_REFERENCE: { exit: 2, summary: 'An image reference is malformed or names no supported transport; the message lists the accepted forms.' },
  BAD_TRANSFORM: { exit: 1, summary: 'Something passed to pipeline as a transform is not an object with a name and an apply function.' },
  BLOB_DIGEST_MISMATCH: { exit: 1, summary: 'A blob\'s content does not match its digest: the blob is corrupt or was tampered with.' },
  BLOB_MISSING: { exit: 1, summary: 'A blob the manifest names is missing from the layout or archive.' },
  BLOB_SIZE_MISMATCH: { exit: 1, summary: 'A blob is larger or smaller than its descriptor says.' },
  BLOB_SYMLINK: { exit: 1, summary: 'A blob file of a source layout is a symlink (or not a regular file); it is refused unless followBlobSymlinks / --follow-blob-symlinks is given (the digest is verified either way).' },
  BLOB_TOO_LARGE: { exit: 1, summary: 'A manifest, config or index blob is larger than such documents may be.' },
  CHART_OUTPUT_CONFLICT: { exit: 1, summary: 'The chart output directory exists and is not a chart enclavify may replace (not a directory, or not empty and without Chart.yaml).' },
  CLASSIFY_HARDLINK: { exit: 1, summary: 'A hard link joins an encrypted region and another path (or another region): both names share one content; put both in one region or replace the link by a copy.' },
  CLASSIFY_STARTUP_ENCRYPTED: { exit: 1, summary: 'A rule would encrypt a file the entrypoint needs before keys exist (program, ELF interpreter, libraries); narrow the region or exclude them.' },
  CLASSIFY_SYMLINK: { exit: 1, summary: 'An encrypted region holds a symlink to a directory, out of the region, or to nothing; Gramine\'s encrypted mounts cannot hold symlinks: remove or move the link (a link to a file of the region becomes an encrypted copy).' },
  CRYPTO_AUTH_FAILED: { exit: 1, summary: 'AES-GCM authentication failed: wrong key, or the data was modified.' },
  DISPOSED: { exit: 1, summary: 'A pipeline result (or an image from a directory) was used after dispose(): its staged layers are gone; write it before disposing.' },
  ELF_INVALID: { exit: 1, summary: 'A file that starts like an ELF executable or library is malformed; the message names the file and the problem.' },
  ELOOP: { exit: 1, summary: 'Resolving a path inside the image crossed too many symlinks (a loop).' },
  ENCRYPTED_LAYER: { exit: 1, summary: 'A layer is ocicrypt-encrypted and no key to open it was given; pass --decryption-key (a JWE private key or an attestation-agent KEK), or copy it encrypted with --no-validate.' },
  ENCRYPT_INTERNAL: { exit: 1, summary: 'encryptFS found its own bookkeeping inconsistent (a bug in enclavify: please report it).' },
  ENCRYPT_NO_KEY: { exit: 1, summary: 'No key is available for an encrypted region.' },
  ENCRYPT_STALE_CLASSIFICATION: { exit: 1, summary: 'The files changed between fileClassify and encryptFS; run fileClassify right before encryptFS.' },
  ENCRYPT_STALE_VIEW: { exit: 1, summary: 'The merged view encryptFS works on does not match the image\'s layers (a transform changed layers in between).' },
  EXISTS: { exit: 1, summary: 'The destination already exists and is not replaced.' },
  FILE_CHANGED: { exit: 1, summary: 'A host file changed while the image was built from its directory; build again.' },
  FS_BAD_PATH: { exit: 1, summary: 'A path inside the image is not acceptable here (a ".." component, or the root where a file is expected).' },
  FS_NOT_A_FILE: { exit: 1, summary: 'A path inside the image names something that is not a regular file.' },
  FS_NOT_FOUND: { exit: 1, summary: 'A file is not in the image (or in the runtime tree).' },
  FS_TOO_LARGE: { exit: 1, summary: 'A file inside the image is larger than the caller allowed (readFile maxBytes); raise the limit or stream it through the merged view.' },
  GRAMINE_ALLOWED_COVERS_TRUSTED: { exit: 1, summary: 'An allowed file entry of the Gramine manifest would cover a trusted file and disable its hash check.' },
  GRAMINE_BAD_ENTRYPOINT: { exit: 1, summary: 'The image\'s entrypoint cannot be run under Gramine (missing, or neither an ELF executable nor a #! script).' },
  GRAMINE_BAD_FRAGMENT: { exit: 1, summary: 'A Gramine manifest fragment given by the user is not valid TOML.' },
  GRAMINE_BAD_MANIFEST: { exit: 1, summary: 'The generated Gramine manifest would not be accepted by Gramine 1.9.' },
  GRAMINE_BAD_OPTIONS: { exit: 1, summary: 'The options of gramine() or signGramineImage are invalid or contradict each other.' },
  GRAMINE_BAD_PATH: { exit: 1, summary: 'A path given to the Gramine runtime is not acceptable (relative, or with a ".." component).' },
  GRAMINE_INSECURE_IN_PRODUCTION: { exit: 1, summary: 'A production Gramine image was asked for with an insecure setting (debug, insecure keys, allowed files...); remove it or drop production.' },
  GRAMINE_NOT_FOUND: { exit: 1, summary: 'A file signing needs (Gramine manifest, PAL, loader) is not in the image; convert with the Gramine runtime first.' },
  GRAMINE_NO_KEY: { exit: 1, summary: 'Insecure development keys were asked for but a region has no key; run encryptFS before injectRuntime.' },
  GRAMINE_NO_RUNTIME: { exit: 1, summary: 'The Gramine runtime (image or directory) is missing or lacks a file it needs.' },
  GRAMINE_PATH_CONFLICT: { exit: 1, summary: 'A file of the Gramine runtime would land on a path the image uses differently.' },
  GRAMINE_SIGN_REFUSED: { exit: 1, summary: 'Signing was refused: the image does not match its protection manifest (the findings are listed).' },
  GRAMINE_TOO_MANY_PATHS: { exit: 1, summary: 'Symlinked directories make too many paths reach the image\'s files; exclude directories or raise the limit.' },
  GRAMINE_UNTRUSTED_CODE: { exit: 1, summary: 'The enclave would load code or trust anchors from paths the host can write.' },
  INTERNAL: { exit: 1, summary: 'An unexpected error inside enclavify (a bug: please report it with the message and its cause).' },
  IO_ERROR: { exit: 1, summary: 'Reading or writing a host file failed; the message names the file and the system error.' },
  JSON_TOO_DEEP: { exit: 1, summary: 'A JSON document (manifest, index, config, index.json, oci-layout, keys file) nests arrays and objects deeper than the limit (64); it is refused unparsed.' },
  KEYS_FILE_INVALID: { exit: 1, summary: 'The keys file is not valid JSON or not a keys file of a supported version.' },
  KEYS_FILE_SYMLINK: { exit: 1, summary: 'The keys file is reached through a symlink in a directory others can write (they could redirect it); move it, fix the directory\'s mode, or pass --allow-keys-symlink.' },
  KEY_INVALID: { exit: 1, summary: 'A key is not 16 bytes (32 hex digits), or a master key is too short.' },
  KEY_UNKNOWN: { exit: 1, summary: 'A key was supplied under a name no encrypted region uses.' },
  LAYER_AMBIGUOUS_WHITEOUT: { exit: 1, summary: 'A layer has a whiteout after the entry it deletes; runtimes disagree on what that means, so the layer is refused.' },
  LAYER_BAD_HARDLINK: { exit: 1, summary: 'A layer has a hard link whose target does not exist in it or below it.' },
  LAYER_BAD_INDEX: { exit: 1, summary: 'An index of a layer\'s entries (a scan result) is inconsistent, e.g. a regular file without a content digest.' },
  LAYER_BAD_WHITEOUT: { exit: 1, summary: 'A layer has a whiteout entry that names no file.' },
  LAYER_CHANGED: { exit: 1, summary: 'A layer\'s content differs between two reads (the blob changed while enclavify worked on it).' },
  LAYER_NOT_A_DIRECTORY: { exit: 1, summary: 'A layer entry sits under a path that is not a directory in the merged view.' },
  LAYER_WRITE_THROUGH_SYMLINK: { exit: 1, summary: 'A layer entry would be written through a symlink (outside its path); the layer is refused.' },
  LOCKED: { exit: 1, summary: 'Another writer holds the layout\'s lock; wait for it or remove a stale lock file.' },
  MANIFEST_INVALID: { exit: 1, summary: 'The protection manifest is malformed or of an unsupported version.' },
  MANIFEST_LAYER_MISSING: { exit: 1, summary: 'The layer holding the protection manifest is gone; run encryptFS in the same pipeline.' },
  MANIFEST_NOT_CANONICAL: { exit: 1, summary: 'The protection manifest is not as enclavify writes it (edited?); it is not amended.' },
  MANIFEST_REFRESH_ENCRYPTED: { exit: 1, summary: 'A later transform added a file under an encrypted region; such files must go through encryptFS.' },
  NOT_A_DIRECTORY: { exit: 1, summary: 'A host path that must be a directory is something else.' },
  NOT_FOUND: { exit: 1, summary: 'The image, tag, platform, file or directory named does not exist.' },
  NO_MRENCLAVE: { exit: 1, summary: 'The policy needs the enclave\'s MRENCLAVE; give it (--mrenclave, --sigstruct) or skip the policy.' },
  NO_SPACE: { exit: 1, summary: 'The disk (or quota) is full; free space or point the temporary directory elsewhere.' },
  OCICRYPT_BAD_ANNOTATION: { exit: 1, summary: 'An encrypted layer\'s ocicrypt annotations (pubopts, wrapped keys, attestation-agent packet) are malformed or unsafe (e.g. a nonce in the public options).' },
  OCICRYPT_BAD_JWE: { exit: 1, summary: 'A wrapped layer key (JWE) is malformed, uses an unsupported algorithm, or fails its authentication tag.' },
  OCICRYPT_BAD_KEY: { exit: 1, summary: 'An encryption or decryption key is unreadable or of an unusable kind (JWE: RSA or EC P-256/384/521; KEK: 32 raw bytes).' },
  OCICRYPT_BAD_RECIPIENT: { exit: 2, summary: 'An --encryption-key value is malformed: jwe:PUBKEY or provider:attestation-agent:keyid=kbs:///REPO/TYPE/TAG[::keypath=FILE][::algorithm=A256GCM|A256CTR].' },
  OCICRYPT_HMAC_MISMATCH: { exit: 1, summary: 'An encrypted layer fails its HMAC: the ciphertext or its annotations were changed, or they belong to another layer.' },
  OCICRYPT_NO_KEY: { exit: 1, summary: 'None of the given decryption keys opens the encrypted layer (no matching JWE recipient, wrong KEK).' },
  OCICRYPT_UNSUPPORTED: { exit: 1, summary: 'The encryption asked for cannot be done or carried: a destination without layer annotations (docker-archive), a non-OCI layer type, a layer already encrypted, an unknown cipher.' },
  PERMISSION_DENIED: { exit: 1, summary: 'The operating system refused access to a host file or directory; the message names it.' },
  PF_BAD_MAC: { exit: 1, summary: 'An encrypted file does not authenticate: wrong key, or the file was modified.' },
  PF_FORMAT: { exit: 1, summary: 'A file is not a Gramine encrypted file of a supported version.' },
  PF_INPUT: { exit: 1, summary: 'The input to the encrypted-file writer is invalid (path too long, content size differs from the size given).' },
  PF_OVERLONG: { exit: 1, summary: 'An encrypted file has bytes beyond the nodes its stored size needs.' },
  PF_PATH_MISMATCH: { exit: 1, summary: 'An encrypted file was made for another path (swapped or renamed).' },
  PF_TRUNCATED: { exit: 1, summary: 'An encrypted file ends before the nodes its stored size needs.' },
  PIPELINE_ORDER: { exit: 1, summary: 'A transform needs another one to run before it in the pipeline (e.g. encryptFS after fileClassify).' },
  REGISTRY_BAD_RESPONSE: { exit: 1, summary: 'The registry answered something the distribution spec does not allow (missing Location, wrong digest, oversized manifest); report it to the registry operator.' },
  REGISTRY_CONNECT: { exit: 1, summary: 'The registry could not be reached (refused, unknown host, timeout); check the host name, port and network.' },
  REGISTRY_CREDENTIALS: { exit: 1, summary: 'Credentials could not be read (malformed --creds, auth file or credential helper); fix the file or the helper.' },
  REGISTRY_DENIED: { exit: 1, summary: 'The registry refused the operation for these credentials (403); ask for push or pull permission on the repository.' },
  REGISTRY_HTTP: { exit: 1, summary: 'The registry answered with an unexpected HTTP status; the message quotes its error.' },
  REGISTRY_NOT_FOUND: { exit: 1, summary: 'No such repository, tag or blob in the registry (404); check the reference.' },
  REGISTRY_NOT_OCI: { exit: 1, summary: 'The server does not speak the OCI distribution API (GET /v2/ failed); check the host and port.' },
  REGISTRY_RETRIES_EXHAUSTED: { exit: 1, summary: 'The registry kept failing (5xx, 429, resets) until the retry limit; try again later or raise the limit.' },
  REGISTRY_TLS: { exit: 1, summary: 'TLS failed: the certificate did not verify or the server speaks no TLS; give --cert-dir with its CA, or --tls-verify=false for a test registry.' },
  REGISTRY_UNAUTHORIZED: { exit: 1, summary: 'The registry wants credentials, or refused the ones given (401); check --creds or the auth file.' },
  REGISTRY_UNSUPPORTED: { exit: 1, summary: 'The registry holds something enclavify cannot read (e.g. a schema 1 manifest); convert it with a newer tool first.' },
  RULE_BAD_NAME: { exit: 1, summary: 'A region key name is invalid or cannot be given to this rule.' },
  RULE_BAD_PATH: { exit: 1, summary: 'A rule\'s path is not absolute, or has "." or ".." components.' },
  RULE_CONFLICT: { exit: 1, summary: 'Two rules give the same path different classes; keep one.' },
  RULE_NOT_A_DIRECTORY: { exit: 1, summary: 'A directory rule names something that is not a directory in the image.' },
  RULE_NOT_A_FILE: { exit: 1, summary: 'A file rule names a directory in the image.' },
  RULE_SYMLINK: { exit: 1, summary: 'A rule\'s path is reached through a symlink; rules match real paths, so name the target.' },
  SCONE_ARCH_MISMATCH: { exit: 1, summary: 'The SCONE binary image is for another architecture than the image.' },
  SCONE_BAD_ENTRYPOINT: { exit: 1, summary: 'The image\'s Entrypoint/Cmd cannot be started (not found, not executable, or a #!/usr/bin/env line with options SCONE cannot apply); fix the image or its #! line.' },
  SCONE_BAD_OPTIONS: { exit: 1, summary: 'The options of scone() are invalid (names, addresses, sizes, MRENCLAVE, binary path).' },
  SCONE_BAD_PATH: { exit: 1, summary: 'A path of the SCONE binary image options is not an absolute file path.' },
  SCONE_BAD_TARGET: { exit: 1, summary: 'A file of the SCONE binary image would replace something that is not a file in the image.' },
  SCONE_BINARY_MISMATCH: { exit: 2, summary: 'The binary (--binary) is not the file the kernel starts for the Entrypoint (the program, or a script\'s #! interpreter, symlinks resolved); give that file or change the Entrypoint.' },
  SCONE_BINARY_NOT_FOUND: { exit: 1, summary: 'The SCONE binary image lacks a file it was asked to provide.' },
  SCONE_CONFIG_MISMATCH: { exit: 1, summary: 'The image\'s SCONE_CONFIG_ID differs from the session the policy describes.' },
  SCONE_FSPF_UNSUPPORTED: { exit: 1, summary: 'SCONE cannot read Gramine encrypted files; use SCONE\'s own file protection (FSPF) or the Gramine runtime.' },
  SCONE_NO_BINARY: { exit: 1, summary: 'The image has no program to run in the SCONE enclave; give binary.' },
  SGX_BAD_KEY: { exit: 1, summary: 'The enclave signing key is not an RSA-3072 key with exponent 3, or cannot be decoded.' },
  SGX_BAD_MANIFEST: { exit: 1, summary: 'The Gramine manifest cannot be expanded or measured (bad trusted files, missing hashes, bad sizes).' },
  SGX_BAD_OPTIONS: { exit: 1, summary: 'The enclave signing options are invalid or contradict each other.' },
  SGX_BAD_PAL: { exit: 1, summary: 'The Gramine PAL (libpal.so) is not an ELF file enclavify can measure.' },
  SGX_BAD_SIGNATURE: { exit: 1, summary: 'A SIGSTRUCT signature does not verify (bad signature, modulus or exponent).' },
  SGX_BAD_SIGSTRUCT: { exit: 1, summary: 'A SIGSTRUCT file is malformed.' },
  SGX_ENCLAVE_TOO_SMALL: { exit: 1, summary: 'sgx.enclave_size is too small for what the enclave holds; raise it.' },
  SGX_MRENCLAVE_MISMATCH: { exit: 1, summary: 'A given SIGSTRUCT is for another enclave than the one measured.' },
  SIGSTRUCT_UNREADABLE: { exit: 1, summary: 'The SIGSTRUCT file cannot be read.' },
  STARTUP_NOT_EXECUTABLE: { exit: 1, summary: 'The program the image runs (or its #! interpreter) cannot be started: not an executable ELF or a valid script.' },
  STARTUP_NOT_FOUND: { exit: 1, summary: 'The program the image runs, or its #! interpreter, is not in the image.' },
  STARTUP_NO_COMMAND: { exit: 1, summary: 'The image has neither Entrypoint nor Cmd, so no startup files can be found.' },
  TAR_BAD_CHECKSUM: { exit: 1, summary: 'A tar header checksum is wrong: the layer is corrupt or not a tar.' },
  TAR_BAD_ENTRY: { exit: 1, summary: 'A tar entry to write is invalid (name, link target, PAX record).' },
  TAR_BAD_HEADER: { exit: 1, summary: 'A tar header has a field that is malformed or out of range.' },
  TAR_BAD_NAME: { exit: 1, summary: 'A tar entry name or link target is not valid UTF-8.' },
  TAR_BAD_NUMBER: { exit: 1, summary: 'A numeric tar header field (octal or base-256) or PAX number is malformed, negative or out of range (e.g. a size beyond the rest of the stream).' },
  TAR_PATH_TOO_LONG: { exit: 1, summary: 'A tar entry name or link target has a component over 255 bytes or is over 4096 bytes long: no Linux file system can unpack it.' },
  TAR_SIZE_MISMATCH: { exit: 1, summary: 'A tar entry\'s content length differs from its size.' },
  TAR_TRUNCATED: { exit: 1, summary: 'A tar stream ends early (no end-of-archive marker, or in the middle of an entry).' },
  TAR_UNSAFE_PATH: { exit: 1, summary: 'A tar entry has a ".." component and would escape the root; the layer is refused.' },
  TAR_UNSUPPORTED_TYPE: { exit: 1, summary: 'A tar entry is of a type enclavify does not support.' },
  TOO_MANY_ENTRIES: { exit: 1, summary: 'The image\'s layers hold more entries than the limit (`--max-entries`, option `maxEntries`, default 2,000,000): refused before the merged view exhausts memory.' },
  TRANSFORM_FAILED: { exit: 1, summary: 'A custom transform threw an error that is not an EnclavifyError; the original is its cause.' },
  UNREADABLE: { exit: 1, summary: 'A file given as an option cannot be read.' },
  UNSUPPORTED_DIGEST: { exit: 1, summary: 'A digest uses an algorithm other than sha256 or sha512.' },
  UNSUPPORTED_FILE: { exit: 1, summary: 'A host file is of a kind that cannot go into an image (socket, device).' },
  UNSUPPORTED_MEDIA_TYPE: { exit: 1, summary: 'A manifest, index or layer has a media type enclavify does not read.' },
  UNSUPPORTED_TRANSPORT: { exit: 1, summary: 'The reference names a transport enclavify does not know (it reads and writes oci:, docker-archive: and docker://).' },
  USAGE: { exit: 2, summary: 'The command line is wrong (unknown option, missing argument); see the command\'s --help.' },
  WRITE_FAILED: { exit: 1, summary: 'Writing the destination failed; nothing was left half-written.' },
  WRITE_THROUGH_SYMLINK: { exit: 1, summary: 'A path enclavify would write inside a destination (layout structure, output directory, keys file) is a symlink; it is refused, not followed.' },
  ZSTD_UNAVAILABLE: { exit: 1, summary: 'zstd output was asked for but the zstd-napi addon does not load (not installed, or installed with --ignore-scripts so it was never built); build it with scripts allowed and a C/C++ compiler (`npm install zstd-napi`, or `npm rebuild zstd-napi` after an install with --ignore-scripts), or write gzip, the default. Reading zstd layers needs no addon.' },
};

/** What {@link ERROR_CODES} says of one code. */
export interface ErrorCodeInfo {
  /** The CLI's exit code for it: 1 failure, 2 usage error, 3 verification findings. */
  readonly exit: 1 | 2 | 3;
  /** What went wrong and what to do, in one sentence. */
  readonly summary: string;
}

/**
 * Every error code, with the CLI's exit code and one sentence (typed by code, not by the text of
 * each sentence: the declarations stay small).
 */
export const ERROR_CODES: Readonly<Record<ErrorCode, ErrorCodeInfo>> = TABLE;

/**
 * The one error type of the library: a message that names the image, blob or file and what is
 * wrong, plus a stable `code` that programs (and the CLI's exit codes) can switch on.
 */
export class EnclavifyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EnclavifyError';
  }
}

/** Whether `code` is a code of {@link ERROR_CODES}. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/**
 * A string from an untrusted document as messages quote it: at most about 100 characters (the
 * first 60 and the last 40 of a longer one, joined by `…`).
 */
export function clip(s: string, head = 60, tail = 40): string {
  return s.length <= head + tail + 1 ? s : `${s.slice(0, head)}…${s.slice(-tail)}`;
}

/** A list of names (tags, images) for a message: each clipped, at most `max` of them. */
export function listForMessage(items: readonly unknown[], max = 10): string {
  const shown = items.slice(0, max).map((t) => clip(String(t)));
  return shown.join(', ') + (items.length > max ? `, … (${items.length - max} more)` : '');
}

/** Short form of a digest for messages: `sha256:0123456789ab`. */
export function shortDigest(d: string): string {
  if (typeof d !== 'string') return String(typeof d);
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(0, i + 13);
}

/** The code for a Node system error (`ENOENT`, `EACCES`, ...). */
function errnoCode(errno: string | undefined): ErrorCode {
  switch (errno) {
    case 'ENOENT':
      return 'NOT_FOUND';
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'PERMISSION_DENIED';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'NO_SPACE';
    case 'EEXIST':
      return 'EXISTS';
    case 'ENOTDIR':
      return 'NOT_A_DIRECTORY';
    default:
      return 'IO_ERROR';
  }
}

/** Whether `e` is the error an aborted stream or timer rejects with. */
export function isAbortError(e: unknown): boolean {
  return (e as { name?: unknown } | null)?.name === 'AbortError' || (e as { code?: unknown } | null)?.code === 'ABORT_ERR';
}

/**
 * `e` as an EnclavifyError: itself when it is one; a Node system error as `NOT_FOUND`,
 * `PERMISSION_DENIED`, `NO_SPACE`, `EXISTS` or `IO_ERROR` with `context` before its message
 * (which names the path); an abort as `ABORTED`; anything else as `fallback`. The original is
 * kept as `cause`.
 */
export function asEnclavifyError(e: unknown, context: string, fallback: ErrorCode = 'INTERNAL'): EnclavifyError {
  if (e instanceof EnclavifyError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const where = (m: string) => (context ? `${context}: ${m}` : m);
  if (isAbortError(e)) return new EnclavifyError('ABORTED', where('cancelled'), { cause: e });
  const errno = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno) && (e as NodeJS.ErrnoException).syscall !== undefined) {
    return new EnclavifyError(errnoCode(errno), where(message), { cause: e });
  }
  return new EnclavifyError(fallback, where(message), { cause: e });
}

/**
 * Runs `fn`, turning whatever it throws into an EnclavifyError ({@link asEnclavifyError}): the
 * boundary of an exported function, so that no plain `Error` reaches a caller. Once `signal` has
 * fired, any failure is `ABORTED` (a stream destroyed by the abort may report it as anything).
 */
export async function coded<T>(context: string | (() => string), fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const what = typeof context === 'string' ? context : context();
    if (signal?.aborted) throw abortedError(what, e);
    throw asEnclavifyError(e, what);
  }
}

/** `ABORTED` for `what`, keeping an existing ABORTED error as it is. */
export function abortedError(what: string, cause: unknown): EnclavifyError {
  if (cause instanceof EnclavifyError && cause.code === 'ABORTED') return cause;
  return new EnclavifyError('ABORTED', `${what}: cancelled`, { cause });
}
