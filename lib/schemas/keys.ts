/* Generated from schemas/keys.schema.json by `npm run schemas`; do not edit. */
/** The JSON Schema `schemas/keys.schema.json`, as a module. */
const schema: { readonly $id: string; readonly [key: string]: unknown } = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "urn:enclavify:schema:keys:1",
  "title": "enclavify keys file",
  "description": "The wrap keys of an image's encrypted regions, written by `enclavify convert` with mode 0600 and never stored in the image. Each key is 16 bytes as 32 hex digits, the form Gramine's `fs.insecure__keys.<name>` takes; at run time a key is provisioned (after attestation) by writing its 16 raw bytes to `/dev/attestation/keys/<name>`. See docs/protection.md.",
  "type": "object",
  "required": [
    "kind",
    "version",
    "keys"
  ],
  "additionalProperties": false,
  "properties": {
    "kind": {
      "const": "enclavify.keys"
    },
    "version": {
      "const": 1
    },
    "manifest": {
      "description": "The protection manifest of the image these keys belong to: `enclavify verify --keys` checks the image's manifest against this SHA-256 (amendments added later, e.g. by `enclavify sign`, are recognised; see docs/protection.md).",
      "type": "object",
      "required": [
        "path",
        "sha256"
      ],
      "additionalProperties": false,
      "properties": {
        "path": {
          "type": "string",
          "pattern": "^/"
        },
        "sha256": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        }
      }
    },
    "conversion": {
      "description": "The conversion these keys belong to (written by `enclavify convert`): the converted image's manifest digest, the destination it was tagged at, the source image's digest and a SHA-256 of the command line. A rerun uses it to recognise a completed or interrupted conversion (docs/keys.md, \"Commit protocol\").",
      "type": "object",
      "required": [
        "image",
        "reference"
      ],
      "additionalProperties": false,
      "properties": {
        "image": {
          "type": "string",
          "pattern": "^sha256:[0-9a-f]{64}$"
        },
        "reference": {
          "type": "string"
        },
        "source": {
          "type": "string"
        },
        "invocation": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        }
      }
    },
    "coco": {
      "description": "Confidential Containers (`convert --runtime coco`): the image's key-encryption key, which a Trustee KBS releases to the guest under `kid` after attestation (also in OUTPUT/trustee/kbs/REPO/TYPE/TAG).",
      "type": "object",
      "required": [
        "kid",
        "kek"
      ],
      "additionalProperties": false,
      "properties": {
        "kid": {
          "type": "string",
          "pattern": "^kbs://[^/]*/[^/]+/[^/]+/[^/]+$"
        },
        "kek": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        },
        "tee": {
          "enum": [
            "tdx",
            "snp",
            "se",
            "coco-dev"
          ]
        },
        "initData": {
          "type": "string",
          "pattern": "^sha(256|384|512):[0-9a-f]+$"
        }
      }
    },
    "keys": {
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "name",
          "region",
          "key"
        ],
        "additionalProperties": false,
        "properties": {
          "name": {
            "description": "Key name: Gramine `key_name` of the encrypted mount, derived from the directory (`/app/data` -> `app_data`) unless chosen.",
            "type": "string",
            "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
          },
          "region": {
            "description": "The (first) directory the key encrypts.",
            "type": "string",
            "pattern": "^/"
          },
          "regions": {
            "description": "Every directory the key encrypts (more than one when the image uses a single key).",
            "type": "array",
            "items": {
              "type": "string",
              "pattern": "^/"
            },
            "minItems": 1
          },
          "key": {
            "description": "16 bytes, 32 lowercase hex digits.",
            "type": "string",
            "pattern": "^[0-9a-f]{32}$"
          }
        }
      }
    }
  }
};
export default schema;
