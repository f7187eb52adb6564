/* Generated from schemas/scone-session.schema.json by `npm run schemas`; do not edit. */
/** The JSON Schema `schemas/scone-session.schema.json`, as a module. */
const schema: { readonly $id: string; readonly [key: string]: unknown } = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "urn:enclavify:schema:scone-session:0.3",
  "title": "SCONE CAS session (policy language v0.3.x)",
  "description": "A SCONE CAS session description (policy), language version 0.3 to 0.3.11, as parsed from YAML. Closed where the language is closed; secret placeholders ($$SCONE::name$$) are accepted where the language allows them. Written by enclavify from the public SCONE documentation.",
  "type": "object",
  "required": [
    "name",
    "version"
  ],
  "additionalProperties": false,
  "properties": {
    "name": {
      "$ref": "#/definitions/sessionName"
    },
    "version": {
      "$ref": "#/definitions/version"
    },
    "predecessor": {
      "$ref": "#/definitions/hex32"
    },
    "creator": {
      "type": "string",
      "description": "Set by CAS; present in sessions read back from CAS."
    },
    "access_policy": {
      "$ref": "#/definitions/accessPolicy"
    },
    "services": {
      "type": "array",
      "items": {
        "$ref": "#/definitions/service"
      }
    },
    "secrets": {
      "type": "array",
      "items": {
        "$ref": "#/definitions/secret"
      }
    },
    "volumes": {
      "type": "array",
      "items": {
        "$ref": "#/definitions/volume"
      }
    },
    "images": {
      "type": "array",
      "items": {
        "$ref": "#/definitions/image"
      }
    },
    "security": {
      "$ref": "#/definitions/security"
    },
    "secret_config": {
      "type": "object",
      "description": "Secret backend (v0.3.10), e.g. store_in: !akv {...}."
    }
  },
  "definitions": {
    "name": {
      "description": "A service, secret, volume or image name: RFC 3986 unreserved characters, 1 to 128.",
      "type": "string",
      "pattern": "^[A-Za-z0-9_.~-]{1,128}$"
    },
    "sessionName": {
      "description": "Session name, optionally inside namespaces (ns/sub/session); segments of unreserved characters, no '.' or '..' segments.",
      "type": "string",
      "pattern": "^(?!\\.{1,2}(?:/|$))[A-Za-z0-9_.~-]{1,128}(?:/(?!\\.{1,2}(?:/|$))[A-Za-z0-9_.~-]{1,128})*$"
    },
    "sessionRefName": {
      "description": "A session or namespace named in an import or export; may be relative (../sibling, ./nested) since v0.3.10.",
      "type": "string",
      "pattern": "^(?:\\.{1,2}/)*[A-Za-z0-9_.~-]{1,128}(?:/[A-Za-z0-9_.~-]{1,128})*$"
    },
    "version": {
      "description": "\"0.3\" or \"0.3.N\". An unquoted 0.3 in YAML is a number and is accepted as such.",
      "anyOf": [
        {
          "type": "string",
          "pattern": "^0\\.3(?:\\.[0-9]+)?$"
        },
        {
          "type": "number",
          "const": 0.3
        }
      ]
    },
    "variable": {
      "description": "A SCONE placeholder: $$SCONE::secret_name[:format][|encoding]$$.",
      "type": "string",
      "pattern": "^\\$\\$SCONE::[^$\\s]+\\$\\$$"
    },
    "hex32": {
      "description": "32 bytes, hex-encoded.",
      "type": "string",
      "pattern": "^[0-9a-fA-F]{64}$"
    },
    "hex16": {
      "description": "16 bytes, hex-encoded.",
      "type": "string",
      "pattern": "^[0-9a-fA-F]{32}$"
    },
    "hex32OrVariable": {
      "anyOf": [
        {
          "$ref": "#/definitions/hex32"
        },
        {
          "$ref": "#/definitions/variable"
        }
      ]
    },
    "u16OrVariable": {
      "anyOf": [
        {
          "type": "integer",
          "minimum": 0,
          "maximum": 65535
        },
        {
          "$ref": "#/definitions/variable"
        }
      ]
    },
    "absPath": {
      "type": "string",
      "pattern": "^/[^\\u0000]*$"
    },
    "cString": {
      "type": "string",
      "pattern": "^[^\\u0000]*$"
    },
    "updatePolicy": {
      "enum": [
        "rollback_protected",
        "ephemeral",
        "no_rollback_protection"
      ]
    },
    "accessPolicy": {
      "anyOf": [
        {
          "$ref": "#/definitions/variable"
        },
        {
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "read": {
              "$ref": "#/definitions/accessRule"
            },
            "update": {
              "$ref": "#/definitions/accessRule"
            },
            "create_sessions": {
              "$ref": "#/definitions/accessRule"
            }
          }
        }
      ]
    },
    "accessRule": {
      "description": "CREATOR, ANY, NONE, a certificate, a certificate key hash, a $$SCONE::secret$$, {signer: key}, governance rules, or a list of those. ANY and NONE stand alone.",
      "anyOf": [
        {
          "type": "string",
          "minLength": 1
        },
        {
          "type": "array",
          "minItems": 1,
          "items": {
            "$ref": "#/definitions/accessEntry"
          },
          "if": {
            "contains": {
              "enum": [
                "ANY",
                "NONE"
              ]
            }
          },
          "then": {
            "maxItems": 1
          }
        },
        {
          "$ref": "#/definitions/governanceRule"
        }
      ]
    },
    "accessEntry": {
      "anyOf": [
        {
          "type": "string",
          "minLength": 1
        },
        {
          "type": "object",
          "required": [
            "signer"
          ],
          "additionalProperties": false,
          "properties": {
            "signer": {
              "type": "string",
              "minLength": 1
            }
          }
        },
        {
          "$ref": "#/definitions/governanceRule"
        }
      ]
    },
    "governanceRule": {
      "type": "object",
      "minProperties": 1,
      "maxProperties": 1,
      "additionalProperties": false,
      "patternProperties": {
        "^require-(?:all|at-least-[1-9][0-9]*)$": {
          "type": "array",
          "minItems": 1,
          "items": {
            "$ref": "#/definitions/accessEntry"
          }
        }
      }
    },
    "service": {
      "type": "object",
      "required": [
        "name"
      ],
      "additionalProperties": false,
      "properties": {
        "name": {
          "$ref": "#/definitions/name"
        },
        "image_name": {
          "$ref": "#/definitions/name"
        },
        "command": {
          "anyOf": [
            {
              "type": "string",
              "minLength": 1,
              "pattern": "^[^\\u0000]*$"
            },
            {
              "type": "array",
              "minItems": 1,
              "items": {
                "$ref": "#/definitions/cString"
              }
            }
          ]
        },
        "environment": {
          "type": "object",
          "propertyNames": {
            "pattern": "^[^=\\u0000]+$"
          },
          "additionalProperties": {
            "anyOf": [
              {
                "$ref": "#/definitions/cString"
              },
              {
                "type": "number"
              },
              {
                "type": "boolean"
              }
            ]
          }
        },
        "pwd": {
          "$ref": "#/definitions/absPath"
        },
        "fspf_path": {
          "$ref": "#/definitions/absPath"
        },
        "fspf_key": {
          "$ref": "#/definitions/hex32OrVariable"
        },
        "fspf_tag": {
          "$ref": "#/definitions/hex16"
        },
        "fspf_update_policy": {
          "enum": [
            "rollback_protected_reinitializable",
            "no_rollback_protection"
          ]
        },
        "attestation": {
          "$ref": "#/definitions/attestation"
        },
        "mrenclaves": {
          "type": "array",
          "minItems": 1,
          "items": {
            "$ref": "#/definitions/hex32OrVariable"
          }
        },
        "platforms": {
          "type": "array",
          "minItems": 1,
          "items": {
            "$ref": "#/definitions/hex32OrVariable"
          }
        },
        "one_time_password_shared_secret": {
          "type": "string",
          "minLength": 1
        }
      },
      "dependencies": {
        "fspf_path": [
          "fspf_key"
        ],
        "fspf_key": [
          "fspf_path"
        ],
        "fspf_tag": [
          "fspf_key"
        ],
        "fspf_update_policy": [
          "fspf_key"
        ]
      }
    },
    "attestation": {
      "description": "One variant, a list of variants (any may match), or a placeholder.",
      "anyOf": [
        {
          "$ref": "#/definitions/variable"
        },
        {
          "$ref": "#/definitions/attestationVariant"
        },
        {
          "type": "array",
          "minItems": 1,
          "items": {
            "anyOf": [
              {
                "$ref": "#/definitions/variable"
              },
              {
                "$ref": "#/definitions/attestationVariant"
              }
            ]
          }
        }
      ]
    },
    "attestationVariant": {
      "type": "object",
      "minProperties": 1,
      "additionalProperties": false,
      "properties": {
        "mrenclave": {
          "anyOf": [
            {
              "$ref": "#/definitions/hex32OrVariable"
            },
            {
              "type": "array",
              "minItems": 1,
              "items": {
                "$ref": "#/definitions/hex32OrVariable"
              }
            }
          ]
        },
        "signer": {
          "anyOf": [
            {
              "$ref": "#/definitions/variable"
            },
            {
              "$ref": "#/definitions/signer"
            }
          ]
        }
      }
    },
    "signer": {
      "type": "object",
      "required": [
        "mrsigner",
        "isvprodid"
      ],
      "additionalProperties": false,
      "properties": {
        "mrsigner": {
          "$ref": "#/definitions/hex32OrVariable"
        },
        "isvprodid": {
          "$ref": "#/definitions/u16OrVariable"
        },
        "isvsvn": {
          "$ref": "#/definitions/u16OrVariable"
        },
        "isvsvn_min": {
          "$ref": "#/definitions/u16OrVariable"
        },
        "isvsvn_max": {
          "$ref": "#/definitions/u16OrVariable"
        }
      },
      "not": {
        "anyOf": [
          {
            "required": [
              "isvsvn",
              "isvsvn_min"
            ]
          },
          {
            "required": [
              "isvsvn",
              "isvsvn_max"
            ]
          }
        ]
      }
    },
    "secret": {
      "type": "object",
      "required": [
        "name"
      ],
      "additionalProperties": false,
      "properties": {
        "name": {
          "$ref": "#/definitions/name"
        },
        "kind": {
          "enum": [
            "ascii",
            "binary",
            "private-key",
            "x509",
            "x509-ca",
            "aad-token",
            "config-fragment",
            "pgp-key"
          ]
        },
        "size": {
          "type": "integer",
          "minimum": 1
        },
        "value": {
          "description": "Explicit value: text, hex for binary, PEM for keys and certificates, any YAML for config-fragment."
        },
        "migrate": {
          "type": "boolean"
        },
        "key_type": {
          "enum": [
            "P-256",
            "P-384",
            "Ed25519",
            "RSA-2048",
            "RSA-3072"
          ]
        },
        "private_key": {
          "type": "string",
          "minLength": 1
        },
        "issuer": {
          "$ref": "#/definitions/name"
        },
        "common_name": {
          "type": "string"
        },
        "endpoint": {
          "enum": [
            "server",
            "client"
          ]
        },
        "dns": {
          "anyOf": [
            {
              "type": "string",
              "minLength": 1
            },
            {
              "type": "array",
              "items": {
                "type": "string",
                "minLength": 1
              }
            }
          ]
        },
        "san": {
          "description": "Subject alternative names (v0.3.10)."
        },
        "valid_for": {
          "type": "string",
          "minLength": 1
        },
        "export": {
          "$ref": "#/definitions/exportList"
        },
        "export_public": {
          "type": "boolean"
        },
        "import": {
          "$ref": "#/definitions/secretImport"
        },
        "import_akv": {
          "type": "object",
          "required": [
            "vault"
          ],
          "additionalProperties": false,
          "properties": {
            "vault": {
              "type": "string",
              "minLength": 1
            },
            "secret_name": {
              "type": "string",
              "minLength": 1
            },
            "token": {
              "$ref": "#/definitions/variable"
            }
          }
        },
        "tenant_id": {
          "type": "string"
        },
        "client_id": {
          "type": "string"
        },
        "application_secret": {
          "type": "string"
        },
        "certificate_thumbprint": {
          "type": "string"
        }
      },
      "allOf": [
        {
          "not": {
            "required": [
              "import",
              "import_akv"
            ]
          }
        },
        {
          "not": {
            "required": [
              "import",
              "value"
            ]
          }
        },
        {
          "if": {
            "type": "object",
            "required": [
              "kind",
              "value"
            ],
            "properties": {
              "kind": {
                "enum": [
                  "ascii",
                  "binary"
                ]
              }
            }
          },
          "then": {
            "type": "object",
            "properties": {
              "value": {
                "type": "string"
              }
            }
          }
        },
        {
          "if": {
            "type": "object",
            "required": [
              "kind",
              "value"
            ],
            "properties": {
              "kind": {
                "const": "binary"
              }
            }
          },
          "then": {
            "type": "object",
            "properties": {
              "value": {
                "type": "string",
                "pattern": "^(?:[0-9a-fA-F]{2})*$"
              }
            }
          }
        }
      ]
    },
    "sessionRef": {
      "description": "A SCONE ID naming another session (or, for secret exports, a namespace), optionally pinned by session hash or on another CAS.",
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "session": {
          "$ref": "#/definitions/sessionRefName"
        },
        "namespace": {
          "$ref": "#/definitions/sessionRefName"
        },
        "session_hash": {
          "$ref": "#/definitions/hex32"
        },
        "cas_url": {
          "type": "string",
          "minLength": 1
        },
        "cas_key": {
          "type": "string",
          "minLength": 1
        },
        "cas_software_key": {
          "type": "string",
          "minLength": 1
        }
      },
      "oneOf": [
        {
          "required": [
            "session"
          ]
        },
        {
          "required": [
            "namespace"
          ]
        }
      ],
      "not": {
        "anyOf": [
          {
            "required": [
              "namespace",
              "session_hash"
            ]
          },
          {
            "required": [
              "cas_key",
              "cas_software_key"
            ]
          }
        ]
      }
    },
    "exportEntry": {
      "anyOf": [
        {
          "type": "string",
          "minLength": 1,
          "description": "SCONE URL short form, e.g. /session=a,session_hash=..."
        },
        {
          "$ref": "#/definitions/sessionRef"
        },
        {
          "type": "object",
          "required": [
            "to"
          ],
          "additionalProperties": false,
          "properties": {
            "to": {
              "$ref": "#/definitions/sessionRef"
            },
            "update_policy": {
              "$ref": "#/definitions/updatePolicy"
            },
            "volume_alias": {
              "$ref": "#/definitions/name"
            }
          }
        }
      ]
    },
    "exportList": {
      "anyOf": [
        {
          "$ref": "#/definitions/exportEntry"
        },
        {
          "type": "array",
          "minItems": 1,
          "items": {
            "$ref": "#/definitions/exportEntry"
          }
        }
      ]
    },
    "secretImport": {
      "type": "object",
      "required": [
        "session",
        "secret"
      ],
      "additionalProperties": false,
      "properties": {
        "session": {
          "$ref": "#/definitions/sessionRefName"
        },
        "secret": {
          "$ref": "#/definitions/name"
        },
        "session_hash": {
          "$ref": "#/definitions/hex32"
        },
        "cas_url": {
          "type": "string",
          "minLength": 1
        },
        "cas_key": {
          "type": "string",
          "minLength": 1
        },
        "cas_software_key": {
          "type": "string",
          "minLength": 1
        }
      }
    },
    "volume": {
      "type": "object",
      "required": [
        "name"
      ],
      "additionalProperties": false,
      "properties": {
        "name": {
          "$ref": "#/definitions/name"
        },
        "fspf_key": {
          "$ref": "#/definitions/hex32OrVariable"
        },
        "fspf_tag": {
          "$ref": "#/definitions/hex16"
        },
        "export": {
          "$ref": "#/definitions/exportList"
        },
        "import": {
          "type": "object",
          "required": [
            "session",
            "volume"
          ],
          "additionalProperties": false,
          "properties": {
            "session": {
              "$ref": "#/definitions/sessionRefName"
            },
            "volume": {
              "$ref": "#/definitions/name"
            },
            "session_hash": {
              "$ref": "#/definitions/hex32"
            }
          }
        }
      },
      "dependencies": {
        "fspf_tag": [
          "fspf_key"
        ],
        "import": {
          "not": {
            "anyOf": [
              {
                "required": [
                  "fspf_key"
                ]
              },
              {
                "required": [
                  "fspf_tag"
                ]
              },
              {
                "required": [
                  "export"
                ]
              }
            ]
          }
        }
      }
    },
    "image": {
      "type": "object",
      "required": [
        "name"
      ],
      "additionalProperties": false,
      "properties": {
        "name": {
          "$ref": "#/definitions/name"
        },
        "volumes": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "name",
              "path"
            ],
            "additionalProperties": false,
            "properties": {
              "name": {
                "$ref": "#/definitions/name"
              },
              "path": {
                "$ref": "#/definitions/absPath"
              },
              "update_policy": {
                "$ref": "#/definitions/updatePolicy"
              }
            }
          }
        },
        "injection_files": {
          "type": "array",
          "items": {
            "$ref": "#/definitions/injectionFile"
          }
        }
      }
    },
    "injectionFile": {
      "description": "A path whose file is read and injected, or a path with its content (held in memory only).",
      "anyOf": [
        {
          "$ref": "#/definitions/absPath"
        },
        {
          "type": "object",
          "required": [
            "path"
          ],
          "additionalProperties": false,
          "properties": {
            "path": {
              "$ref": "#/definitions/absPath"
            },
            "content": {
              "type": "string"
            },
            "permission": {
              "anyOf": [
                {
                  "type": "integer",
                  "minimum": 0,
                  "maximum": 4095
                },
                {
                  "type": "string",
                  "pattern": "^(?:0o)?[0-7]{1,4}$"
                }
              ]
            }
          }
        }
      ]
    },
    "security": {
      "anyOf": [
        {
          "$ref": "#/definitions/variable"
        },
        {
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "attestation": {
              "anyOf": [
                {
                  "$ref": "#/definitions/variable"
                },
                {
                  "$ref": "#/definitions/securityAttestation"
                }
              ]
            },
            "singleton_enclaves": {
              "type": "boolean"
            },
            "service_access_token": {
              "type": "string",
              "minLength": 1
            }
          }
        }
      ]
    },
    "securityAttestation": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "mode": {
          "enum": [
            "hardware",
            "none",
            "maa"
          ]
        },
        "tolerate": {
          "type": "array",
          "uniqueItems": true,
          "items": {
            "enum": [
              "debug-mode",
              "debug",
              "hyperthreading",
              "insecure-igpu",
              "outdated-tcb",
              "software-hardening-needed",
              "insecure-configuration",
              "aepic-leak",
              "maa-managed-tcb"
            ]
          }
        },
        "ignore_advisories": {
          "anyOf": [
            {
              "const": "*"
            },
            {
              "type": "array",
              "uniqueItems": true,
              "items": {
                "type": "string",
                "pattern": "^INTEL-SA-[0-9]{5}$"
              }
            }
          ]
        },
        "trusted_scone_qe_pubkeys": {
          "type": "array",
          "items": {
            "$ref": "#/definitions/hex32"
          }
        },
        "url": {
          "type": "string",
          "pattern": "^https://"
        },
        "certificates": {
          "type": "array",
          "items": {
            "type": "string",
            "minLength": 1
          }
        },
        "min_rsa_signing_key_size": {
          "type": "integer",
          "minimum": 1
        },
        "one_time_password_shared_secret": {
          "type": "string",
          "minLength": 1
        }
      },
      "allOf": [
        {
          "description": "The \"*\" wildcard for advisories is only accepted in debug mode.",
          "if": {
            "type": "object",
            "required": [
              "ignore_advisories"
            ],
            "properties": {
              "ignore_advisories": {
                "const": "*"
              }
            }
          },
          "then": {
            "type": "object",
            "required": [
              "tolerate"
            ],
            "properties": {
              "tolerate": {
                "type": "array",
                "contains": {
                  "enum": [
                    "debug-mode",
                    "debug"
                  ]
                }
              }
            }
          }
        },
        {
          "if": {
            "type": "object",
            "required": [
              "mode"
            ],
            "properties": {
              "mode": {
                "const": "maa"
              }
            }
          },
          "then": {
            "type": "object",
            "required": [
              "url"
            ]
          }
        }
      ]
    }
  }
};
export default schema;
