/* Generated from schemas/gramine-policy.schema.json by `npm run schemas`; do not edit. */
/** The JSON Schema `schemas/gramine-policy.schema.json`, as a module. */
const schema: { readonly $id: string; readonly [key: string]: unknown } = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "urn:enclavify:schema:gramine-attestation-policy:1",
  "title": "enclavify Gramine attestation policy",
  "description": "What a key-releasing verifier (a Gramine secret-provisioning / RA-TLS server) checks before it releases keys to a Gramine enclave, and which keys it releases, by name only. Never holds key material. See docs/policy.md.",
  "type": "object",
  "required": [
    "kind",
    "version",
    "attestation",
    "keys"
  ],
  "additionalProperties": false,
  "properties": {
    "kind": {
      "const": "enclavify.gramine-attestation-policy"
    },
    "version": {
      "const": 1
    },
    "name": {
      "description": "A label for humans and logs, e.g. the image name.",
      "type": "string",
      "minLength": 1,
      "maxLength": 256
    },
    "attestation": {
      "type": "object",
      "required": [
        "type",
        "allowDebug",
        "allowedTcbStatuses"
      ],
      "additionalProperties": false,
      "properties": {
        "type": {
          "description": "Quote type the verifier accepts.",
          "enum": [
            "dcap",
            "epid"
          ]
        },
        "mrenclave": {
          "description": "Accepted MRENCLAVE values; the enclave's must be one of them.",
          "type": "array",
          "minItems": 1,
          "uniqueItems": true,
          "items": {
            "$ref": "#/definitions/hex32"
          }
        },
        "signer": {
          "description": "Accepted signer: MRSIGNER and ISV product id must match, ISV SVN must be at least minIsvSvn.",
          "type": "object",
          "required": [
            "mrsigner",
            "isvProdId",
            "minIsvSvn"
          ],
          "additionalProperties": false,
          "properties": {
            "mrsigner": {
              "$ref": "#/definitions/hex32"
            },
            "isvProdId": {
              "$ref": "#/definitions/u16"
            },
            "minIsvSvn": {
              "$ref": "#/definitions/u16"
            }
          }
        },
        "allowDebug": {
          "description": "Accept enclaves with the DEBUG attribute (insecure: their memory is readable).",
          "type": "boolean"
        },
        "allowedTcbStatuses": {
          "description": "Platform TCB statuses the verifier accepts (DCAP names; EPID statuses map onto them, see docs/policy.md). Revoked is never accepted.",
          "type": "array",
          "minItems": 1,
          "uniqueItems": true,
          "items": {
            "enum": [
              "UpToDate",
              "SWHardeningNeeded",
              "ConfigurationNeeded",
              "ConfigurationAndSWHardeningNeeded",
              "OutOfDate",
              "OutOfDateConfigurationNeeded"
            ]
          }
        }
      },
      "anyOf": [
        {
          "required": [
            "mrenclave"
          ]
        },
        {
          "required": [
            "signer"
          ]
        }
      ]
    },
    "keys": {
      "description": "Keys released after successful attestation, by name (the Gramine key name, /dev/attestation/keys/<name>). Values live in the verifier's key store, never here.",
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "name"
        ],
        "additionalProperties": false,
        "properties": {
          "name": {
            "$ref": "#/definitions/keyName"
          },
          "mounts": {
            "description": "Encrypted mounts (paths in the enclave) that use this key, for reference.",
            "type": "array",
            "uniqueItems": true,
            "items": {
              "type": "string",
              "pattern": "^/[^\\u0000]*$"
            }
          }
        }
      }
    },
    "protectionManifestDigest": {
      "description": "Digest of the protection manifest enclavify wrote for the image, binding the policy to exactly those protected files.",
      "type": "string",
      "pattern": "^sha256:[0-9a-f]{64}$"
    }
  },
  "definitions": {
    "hex32": {
      "type": "string",
      "pattern": "^[0-9a-f]{64}$"
    },
    "u16": {
      "type": "integer",
      "minimum": 0,
      "maximum": 65535
    },
    "keyName": {
      "description": "A Gramine key name. The _sgx_ prefix is reserved for sealing keys, which are never provisioned; a name that looks like a 16- or 32-byte hex key is refused so that a key value cannot be passed off as a name.",
      "type": "string",
      "pattern": "^(?!_sgx_)[A-Za-z0-9_.-]{1,64}$",
      "not": {
        "type": "string",
        "pattern": "^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{64})$"
      }
    }
  }
};
export default schema;
