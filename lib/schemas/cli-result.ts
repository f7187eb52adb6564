/* Generated from schemas/cli-result.schema.json by `npm run schemas`; do not edit. */
/** The JSON Schema `schemas/cli-result.schema.json`, as a module. */
const schema: { readonly $id: string; readonly [key: string]: unknown } = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "urn:enclavify:schema:cli-result:1",
  "title": "enclavify --json output",
  "description": "The one JSON object every `enclavify COMMAND --json` prints on stdout (progress and reports go to stderr). One definition per command and outcome; `oneOf` picks it. Every command that writes an image names it `destination`. See docs/cli.md.",
  "oneOf": [
    {
      "$ref": "#/definitions/copy"
    },
    {
      "$ref": "#/definitions/tree"
    },
    {
      "$ref": "#/definitions/convert"
    },
    {
      "$ref": "#/definitions/convertDryRun"
    },
    {
      "$ref": "#/definitions/convertAlreadyDone"
    },
    {
      "$ref": "#/definitions/sign"
    },
    {
      "$ref": "#/definitions/verify"
    },
    {
      "$ref": "#/definitions/verifyLayersClosed"
    },
    {
      "$ref": "#/definitions/inspect"
    },
    {
      "$ref": "#/definitions/error"
    }
  ],
  "definitions": {
    "destination": {
      "description": "The reference the image was written to (the command's DST / --to), as written: the same key in every command that writes an image.",
      "type": "string",
      "minLength": 1
    },
    "digest": {
      "description": "A manifest or blob digest.",
      "type": "string",
      "pattern": "^sha256:[0-9a-f]{64}$"
    },
    "blob": {
      "description": "One blob of a push to a registry (docker:// destinations only).",
      "type": "object",
      "required": [
        "digest",
        "size",
        "mediaType",
        "status"
      ],
      "additionalProperties": false,
      "properties": {
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "size": {
          "type": "integer",
          "minimum": 0
        },
        "mediaType": {
          "type": "string"
        },
        "status": {
          "enum": [
            "pushed",
            "mounted",
            "skipped"
          ]
        },
        "from": {
          "type": "string"
        }
      }
    },
    "blobs": {
      "type": "array",
      "items": {
        "$ref": "#/definitions/blob"
      }
    },
    "error": {
      "description": "Any command, when it fails with --json: the error code (docs/errors.md) and message. The exit status is the code's.",
      "type": "object",
      "required": [
        "error"
      ],
      "additionalProperties": false,
      "properties": {
        "error": {
          "type": "object",
          "required": [
            "code",
            "message"
          ],
          "additionalProperties": false,
          "properties": {
            "code": {
              "type": "string",
              "pattern": "^[A-Z][A-Z0-9_]*$",
              "description": "An error code of docs/errors.md."
            },
            "message": {
              "type": "string"
            }
          }
        }
      }
    },
    "copy": {
      "description": "enclavify copy --json: the manifest written.",
      "type": "object",
      "required": [
        "digest",
        "size",
        "mediaType",
        "destination"
      ],
      "additionalProperties": false,
      "properties": {
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "size": {
          "type": "integer",
          "minimum": 0
        },
        "mediaType": {
          "type": "string"
        },
        "destination": {
          "$ref": "#/definitions/destination"
        },
        "kekFile": {
          "type": "string",
          "description": "--kek-out: the generated key-encryption key (mode 0600)."
        },
        "blobs": {
          "$ref": "#/definitions/blobs"
        }
      }
    },
    "treeEntry": {
      "type": "object",
      "required": [
        "path",
        "type",
        "mode",
        "uid",
        "gid",
        "mtime"
      ],
      "additionalProperties": false,
      "properties": {
        "path": {
          "type": "string"
        },
        "type": {
          "enum": [
            "file",
            "dir",
            "symlink",
            "hardlink",
            "chardev",
            "blockdev",
            "fifo"
          ]
        },
        "mode": {
          "type": "string",
          "pattern": "^[0-7]{4,}$"
        },
        "uid": {
          "type": "integer",
          "minimum": 0
        },
        "gid": {
          "type": "integer",
          "minimum": 0
        },
        "size": {
          "type": "integer",
          "minimum": 0
        },
        "sha256": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        },
        "nlink": {
          "type": "integer",
          "minimum": 1
        },
        "target": {
          "type": "string"
        },
        "major": {
          "type": "integer",
          "minimum": 0
        },
        "minor": {
          "type": "integer",
          "minimum": 0
        },
        "mtime": {
          "type": "number"
        }
      }
    },
    "tree": {
      "description": "enclavify tree --json: the merged root file system, sorted bytewise.",
      "type": "object",
      "required": [
        "image",
        "digest",
        "entries"
      ],
      "additionalProperties": false,
      "properties": {
        "image": {
          "type": "string"
        },
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "entries": {
          "type": "array",
          "items": {
            "$ref": "#/definitions/treeEntry"
          }
        }
      }
    },
    "convert": {
      "description": "enclavify convert --json: the image written and what came with it.",
      "type": "object",
      "required": [
        "digest",
        "destination",
        "keysFile",
        "runtime",
        "mrenclave",
        "mrsigner",
        "sessionId",
        "policy",
        "chart",
        "artifacts",
        "report"
      ],
      "additionalProperties": false,
      "properties": {
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "destination": {
          "$ref": "#/definitions/destination"
        },
        "keysFile": {
          "type": [
            "string",
            "null"
          ],
          "description": "The keys file written (null: no encrypted directory, no keys)."
        },
        "runtime": {
          "enum": [
            "gramine",
            "scone",
            "coco",
            null
          ],
          "description": "The runtime added (null: files protected only)."
        },
        "mrenclave": {
          "type": "array",
          "items": {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$"
          }
        },
        "mrsigner": {
          "type": [
            "string",
            "null"
          ],
          "pattern": "^[0-9a-f]{64}$"
        },
        "sessionId": {
          "type": [
            "string",
            "null"
          ],
          "description": "SCONE: NAMESPACE/SESSION of the policy written."
        },
        "policy": {
          "type": [
            "string",
            "null"
          ],
          "description": "Path of the policy, relative to --output-dir."
        },
        "chart": {
          "type": [
            "string",
            "null"
          ],
          "description": "Directory of the Helm chart, relative to --output-dir."
        },
        "artifacts": {
          "type": "array",
          "items": {
            "type": "string"
          },
          "description": "Every file written besides the image (keys, policy, chart files, report.json)."
        },
        "blobs": {
          "$ref": "#/definitions/blobs"
        },
        "report": {
          "type": "object",
          "description": "What every step did, by step name (fileClassify follows classification-report.schema.json); no key material."
        }
      }
    },
    "convertDryRun": {
      "description": "enclavify convert --dry-run --json: the digest the image would have; nothing written.",
      "type": "object",
      "required": [
        "dryRun",
        "digest",
        "destination",
        "runtime",
        "mrenclave",
        "mrsigner",
        "sessionId",
        "policy",
        "chart",
        "artifacts",
        "report"
      ],
      "additionalProperties": false,
      "properties": {
        "dryRun": {
          "const": true
        },
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "destination": {
          "$ref": "#/definitions/destination"
        },
        "runtime": {
          "enum": [
            "gramine",
            "scone",
            "coco",
            null
          ],
          "description": "The runtime added (null: files protected only)."
        },
        "mrenclave": {
          "type": "array",
          "items": {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$"
          }
        },
        "mrsigner": {
          "type": [
            "string",
            "null"
          ],
          "pattern": "^[0-9a-f]{64}$"
        },
        "sessionId": {
          "type": [
            "string",
            "null"
          ],
          "description": "SCONE: NAMESPACE/SESSION of the policy written."
        },
        "policy": {
          "type": [
            "string",
            "null"
          ],
          "description": "Path of the policy, relative to --output-dir."
        },
        "chart": {
          "type": [
            "string",
            "null"
          ],
          "description": "Directory of the Helm chart, relative to --output-dir."
        },
        "artifacts": {
          "type": "array",
          "items": {
            "type": "string"
          },
          "description": "The artifacts the conversion would write (relative to --output-dir)."
        },
        "report": {
          "type": "object"
        }
      }
    },
    "convertAlreadyDone": {
      "description": "enclavify convert --json rerun after the identical conversion completed: nothing done.",
      "type": "object",
      "required": [
        "digest",
        "destination",
        "keysFile",
        "alreadyConverted"
      ],
      "additionalProperties": false,
      "properties": {
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "destination": {
          "$ref": "#/definitions/destination"
        },
        "keysFile": {
          "type": "string"
        },
        "alreadyConverted": {
          "const": true
        }
      }
    },
    "sign": {
      "description": "enclavify sign --json: the signed image and its enclave identity.",
      "type": "object",
      "required": [
        "digest",
        "destination",
        "manifest",
        "mrenclave",
        "mrsigner",
        "isvProdId",
        "isvSvn",
        "debug",
        "warnings"
      ],
      "additionalProperties": false,
      "properties": {
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "destination": {
          "$ref": "#/definitions/destination"
        },
        "manifest": {
          "type": "string",
          "description": "The Gramine manifest signed (path in the image)."
        },
        "mrenclave": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        },
        "mrsigner": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        },
        "isvProdId": {
          "type": "integer",
          "minimum": 0
        },
        "isvSvn": {
          "type": "integer",
          "minimum": 0
        },
        "debug": {
          "type": "boolean"
        },
        "protectionManifestSha256": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$",
          "description": "The updated protection manifest's SHA-256 (policies must pin this one)."
        },
        "warnings": {
          "type": "array",
          "items": {
            "type": "string"
          }
        },
        "blobs": {
          "$ref": "#/definitions/blobs"
        }
      }
    },
    "finding": {
      "type": "object",
      "required": [
        "path",
        "code",
        "message"
      ],
      "additionalProperties": false,
      "properties": {
        "path": {
          "type": "string"
        },
        "code": {
          "type": "string",
          "pattern": "^[A-Z][A-Z0-9_]*$"
        },
        "message": {
          "type": "string"
        },
        "layer": {
          "type": "integer",
          "minimum": 0
        }
      }
    },
    "ocicrypt": {
      "description": "The ocicrypt layers' check (layer -1: the Trustee bundle).",
      "type": "object",
      "required": [
        "ok",
        "layers",
        "findings"
      ],
      "additionalProperties": false,
      "properties": {
        "ok": {
          "type": "boolean"
        },
        "layers": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "index",
              "encrypted",
              "mediaType",
              "schemes",
              "kids",
              "decrypted"
            ],
            "additionalProperties": false,
            "properties": {
              "index": {
                "type": "integer",
                "minimum": 0
              },
              "encrypted": {
                "type": "boolean"
              },
              "mediaType": {
                "type": "string"
              },
              "schemes": {
                "type": "array",
                "items": {
                  "type": "string"
                }
              },
              "kids": {
                "type": "array",
                "items": {
                  "type": "string"
                }
              },
              "decrypted": {
                "type": "boolean"
              }
            }
          }
        },
        "findings": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "layer",
              "code",
              "message"
            ],
            "additionalProperties": false,
            "properties": {
              "layer": {
                "type": "integer",
                "minimum": -1
              },
              "code": {
                "enum": [
                  "NOT_ENCRYPTED",
                  "BAD_ANNOTATION",
                  "DECRYPT_FAILED",
                  "NO_KEY",
                  "BUNDLE_MISMATCH"
                ]
              },
              "message": {
                "type": "string"
              }
            }
          }
        }
      }
    },
    "verify": {
      "description": "enclavify verify --json: the findings (exit 3 when ok is false).",
      "type": "object",
      "required": [
        "image",
        "ok",
        "findings",
        "checked",
        "pinned",
        "warnings"
      ],
      "additionalProperties": false,
      "properties": {
        "image": {
          "type": "string"
        },
        "ok": {
          "type": "boolean"
        },
        "findings": {
          "type": "array",
          "items": {
            "$ref": "#/definitions/finding"
          }
        },
        "manifestSha256": {
          "type": "string",
          "pattern": "^[0-9a-f]{64}$"
        },
        "pin": {
          "type": "object",
          "required": [
            "sha256",
            "source",
            "matched",
            "amended"
          ],
          "additionalProperties": false,
          "properties": {
            "sha256": {
              "type": "string",
              "pattern": "^[0-9a-f]{64}$"
            },
            "source": {
              "enum": [
                "expected",
                "keys file"
              ]
            },
            "matched": {
              "type": "boolean"
            },
            "amended": {
              "type": "array",
              "items": {
                "type": "string"
              }
            }
          }
        },
        "notChecked": {
          "type": "object",
          "required": [
            "encrypted",
            "paths",
            "reason"
          ],
          "additionalProperties": false,
          "properties": {
            "encrypted": {
              "type": "integer",
              "minimum": 0
            },
            "paths": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "reason": {
              "type": "string"
            }
          }
        },
        "checked": {
          "type": "object",
          "required": [
            "encrypted",
            "authenticated",
            "plain",
            "symlinks",
            "entries",
            "hiddenEntries",
            "layers"
          ],
          "additionalProperties": false,
          "properties": {
            "encrypted": {
              "type": "integer",
              "minimum": 0
            },
            "authenticated": {
              "type": "integer",
              "minimum": 0
            },
            "plain": {
              "type": "integer",
              "minimum": 0
            },
            "symlinks": {
              "type": "integer",
              "minimum": 0
            },
            "entries": {
              "type": "integer",
              "minimum": 0
            },
            "hiddenEntries": {
              "type": "integer",
              "minimum": 0
            },
            "layers": {
              "type": "integer",
              "minimum": 0
            }
          }
        },
        "pinned": {
          "type": "boolean"
        },
        "warnings": {
          "type": "array",
          "items": {
            "type": "string"
          }
        },
        "ocicrypt": {
          "$ref": "#/definitions/ocicrypt"
        }
      }
    },
    "verifyLayersClosed": {
      "description": "enclavify verify --json on an image whose encrypted layers the keys given do not open.",
      "type": "object",
      "required": [
        "image",
        "ok",
        "ocicrypt",
        "protection"
      ],
      "additionalProperties": false,
      "properties": {
        "image": {
          "type": "string"
        },
        "ok": {
          "type": "boolean"
        },
        "ocicrypt": {
          "$ref": "#/definitions/ocicrypt"
        },
        "protection": {
          "type": "string",
          "description": "Why the protection manifest was not checked."
        }
      }
    },
    "inspect": {
      "description": "enclavify inspect --json: what the image holds.",
      "type": "object",
      "required": [
        "image",
        "digest",
        "runtime",
        "entrypoint",
        "cmd",
        "labels",
        "history"
      ],
      "additionalProperties": false,
      "properties": {
        "image": {
          "type": "string"
        },
        "digest": {
          "$ref": "#/definitions/digest"
        },
        "runtime": {
          "enum": [
            "gramine",
            "scone",
            "native"
          ]
        },
        "entrypoint": {
          "type": "array",
          "items": {
            "type": "string"
          }
        },
        "cmd": {
          "type": "array",
          "items": {
            "type": "string"
          }
        },
        "labels": {
          "type": "object",
          "additionalProperties": {
            "type": "string"
          }
        },
        "gramine": {
          "type": "object",
          "required": [
            "manifestPath",
            "manifestSha256",
            "trustedEntries",
            "allowedEntries",
            "mounts",
            "insecureKeyNames",
            "hostEnv",
            "warnings",
            "problems"
          ],
          "additionalProperties": false,
          "properties": {
            "manifestPath": {
              "type": "string"
            },
            "manifestSha256": {
              "type": "string",
              "pattern": "^[0-9a-f]{64}$"
            },
            "manifestSgxPath": {
              "type": "string"
            },
            "loader": {
              "type": "string"
            },
            "libosEntrypoint": {
              "type": "string"
            },
            "argv": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "startDir": {
              "type": "string"
            },
            "enclaveSize": {
              "type": "string"
            },
            "maxThreads": {
              "type": "integer",
              "minimum": 0
            },
            "debug": {
              "type": "boolean"
            },
            "edmm": {
              "type": "boolean"
            },
            "remoteAttestation": {
              "type": "string"
            },
            "trustedEntries": {
              "type": "integer",
              "minimum": 0
            },
            "allowedEntries": {
              "type": "integer",
              "minimum": 0
            },
            "mounts": {
              "type": "array",
              "items": {
                "type": "object",
                "required": [
                  "path",
                  "type"
                ],
                "additionalProperties": false,
                "properties": {
                  "path": {
                    "type": "string"
                  },
                  "type": {
                    "type": "string"
                  },
                  "keyName": {
                    "type": "string"
                  }
                }
              }
            },
            "insecureKeyNames": {
              "type": "array",
              "items": {
                "type": "string"
              },
              "description": "Names only: key values are never printed."
            },
            "sigtermInjection": {
              "type": "boolean"
            },
            "hostEnv": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "warnings": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "sigstruct": {
              "type": "object",
              "required": [
                "path",
                "mrenclave",
                "mrsigner",
                "isvProdId",
                "isvSvn",
                "debug",
                "date",
                "signatureValid"
              ],
              "additionalProperties": false,
              "properties": {
                "path": {
                  "type": "string"
                },
                "mrenclave": {
                  "type": "string",
                  "pattern": "^[0-9a-f]{64}$"
                },
                "mrsigner": {
                  "type": "string",
                  "pattern": "^[0-9a-f]{64}$"
                },
                "isvProdId": {
                  "type": "integer",
                  "minimum": 0
                },
                "isvSvn": {
                  "type": "integer",
                  "minimum": 0
                },
                "debug": {
                  "type": "boolean"
                },
                "date": {
                  "type": "string"
                },
                "signatureValid": {
                  "type": "boolean"
                },
                "mrenclaveMatchesImage": {
                  "type": "boolean"
                },
                "measuredMrenclave": {
                  "type": "string",
                  "pattern": "^[0-9a-f]{64}$"
                }
              }
            },
            "problems": {
              "type": "array",
              "items": {
                "type": "string"
              }
            }
          }
        },
        "scone": {
          "type": "object",
          "required": [
            "env"
          ],
          "additionalProperties": false,
          "properties": {
            "configId": {
              "type": "string"
            },
            "cas": {
              "type": "string"
            },
            "las": {
              "type": "string"
            },
            "env": {
              "type": "object",
              "additionalProperties": {
                "type": "string"
              }
            }
          }
        },
        "protection": {
          "type": "object",
          "required": [
            "path",
            "sha256",
            "regions",
            "hostPaths"
          ],
          "additionalProperties": false,
          "properties": {
            "path": {
              "type": "string"
            },
            "sha256": {
              "type": "string",
              "pattern": "^[0-9a-f]{64}$"
            },
            "regions": {
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
                    "type": "string"
                  },
                  "path": {
                    "type": "string"
                  },
                  "files": {
                    "type": "integer",
                    "minimum": 0
                  }
                }
              }
            },
            "hostPaths": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "files": {
              "type": "object",
              "required": [
                "encrypted",
                "authenticated",
                "plain"
              ],
              "additionalProperties": false,
              "properties": {
                "encrypted": {
                  "type": "integer",
                  "minimum": 0
                },
                "authenticated": {
                  "type": "integer",
                  "minimum": 0
                },
                "plain": {
                  "type": "integer",
                  "minimum": 0
                }
              }
            }
          }
        },
        "history": {
          "type": "array",
          "items": {
            "type": "string"
          },
          "description": "History entries written by enclavify."
        }
      }
    }
  }
};
export default schema;
