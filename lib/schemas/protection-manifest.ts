/* Generated from schemas/protection-manifest.schema.json by `npm run schemas`; do not edit. */
/** The JSON Schema `schemas/protection-manifest.schema.json`, as a module. */
const schema: { readonly $id: string; readonly [key: string]: unknown } = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "urn:enclavify:schema:protection-manifest:2",
  "title": "enclavify protection manifest",
  "description": "Stored in a converted image at /.enclavify/protection.json: the encrypted regions, the effective protection rules, every regular file of the image with its class (the SHA-256 of authenticated files; sizes and the SHA-256 of the encrypted bytes of encrypted files), every symlink, directory, device node and FIFO, and the mode, owner, group and xattrs of each; then, optionally, amendments: records a later step (enclavify sign) added without changing the manifest before them. Its own SHA-256 goes into the keys file and attestation policies. Never holds keys or hashes of encrypted plaintext. See docs/protection.md.",
  "type": "object",
  "required": [
    "kind",
    "version",
    "encryptedFormat",
    "regions",
    "hostPaths",
    "rules",
    "files",
    "symlinks",
    "entries"
  ],
  "additionalProperties": false,
  "definitions": {
    "absPath": {
      "type": "string",
      "pattern": "^/"
    },
    "sha256": {
      "type": "string",
      "pattern": "^[0-9a-f]{64}$"
    },
    "keyName": {
      "type": "string",
      "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
    },
    "class": {
      "enum": [
        "encrypted",
        "authenticated",
        "plain"
      ]
    },
    "size": {
      "type": "integer",
      "minimum": 0
    },
    "file": {
      "type": "object",
      "required": [
        "path",
        "class",
        "mode",
        "uid",
        "gid"
      ],
      "properties": {
        "path": {
          "$ref": "#/definitions/absPath"
        },
        "class": {
          "$ref": "#/definitions/class"
        },
        "mode": {
          "$ref": "#/definitions/mode"
        },
        "uid": {
          "$ref": "#/definitions/uint"
        },
        "gid": {
          "$ref": "#/definitions/uint"
        },
        "xattrs": {
          "$ref": "#/definitions/xattrs"
        }
      },
      "oneOf": [
        {
          "description": "Encrypted: a Gramine encrypted file (format 2.0) bound to `path`, under the key of `region`.",
          "required": [
            "region",
            "size",
            "diskSize",
            "diskSha256"
          ],
          "additionalProperties": false,
          "properties": {
            "path": true,
            "class": {
              "const": "encrypted"
            },
            "region": {
              "$ref": "#/definitions/keyName"
            },
            "size": {
              "$ref": "#/definitions/size",
              "description": "Content (plaintext) size in bytes."
            },
            "diskSize": {
              "$ref": "#/definitions/size",
              "description": "Size of the encrypted file in the image."
            },
            "diskSha256": {
              "$ref": "#/definitions/sha256",
              "description": "SHA-256 of the encrypted bytes in the image."
            },
            "mode": true,
            "uid": true,
            "gid": true,
            "xattrs": true
          }
        },
        {
          "description": "Authenticated: kept as is, pinned by SHA-256.",
          "required": [
            "size",
            "sha256"
          ],
          "additionalProperties": false,
          "properties": {
            "path": true,
            "class": {
              "const": "authenticated"
            },
            "size": {
              "$ref": "#/definitions/size"
            },
            "sha256": {
              "$ref": "#/definitions/sha256"
            },
            "startup": {
              "const": true,
              "description": "A startup file of the entrypoint (program, interpreter, library)."
            },
            "mode": true,
            "uid": true,
            "gid": true,
            "xattrs": true
          }
        },
        {
          "description": "Plain: deliberately not protected.",
          "additionalProperties": false,
          "properties": {
            "path": true,
            "class": {
              "const": "plain"
            },
            "hostPath": {
              "const": true,
              "description": "Mounted from the host at run time."
            },
            "mode": true,
            "uid": true,
            "gid": true,
            "xattrs": true
          }
        }
      ]
    },
    "uint": {
      "type": "integer",
      "minimum": 0
    },
    "mode": {
      "type": "integer",
      "minimum": 0,
      "maximum": 4095,
      "description": "Permission bits including setuid (04000), setgid (02000) and sticky (01000), as a decimal integer."
    },
    "xattrs": {
      "type": "object",
      "description": "Extended attributes (PAX SCHILY.xattr.NAME records) by name, values as lowercase hex; absent when none.",
      "additionalProperties": {
        "type": "string",
        "pattern": "^([0-9a-f]{2})*$"
      },
      "minProperties": 1
    },
    "symlink": {
      "type": "object",
      "required": [
        "path",
        "target",
        "mode",
        "uid",
        "gid"
      ],
      "additionalProperties": false,
      "properties": {
        "path": {
          "$ref": "#/definitions/absPath"
        },
        "target": {
          "type": "string"
        },
        "mode": {
          "$ref": "#/definitions/mode"
        },
        "uid": {
          "$ref": "#/definitions/uint"
        },
        "gid": {
          "$ref": "#/definitions/uint"
        },
        "xattrs": {
          "$ref": "#/definitions/xattrs"
        }
      }
    },
    "entry": {
      "description": "A directory (the root is `/`), device node or FIFO.",
      "type": "object",
      "required": [
        "path",
        "type",
        "mode",
        "uid",
        "gid"
      ],
      "additionalProperties": false,
      "properties": {
        "path": {
          "$ref": "#/definitions/absPath"
        },
        "type": {
          "enum": [
            "dir",
            "chardev",
            "blockdev",
            "fifo"
          ]
        },
        "devmajor": {
          "$ref": "#/definitions/uint"
        },
        "devminor": {
          "$ref": "#/definitions/uint"
        },
        "mode": {
          "$ref": "#/definitions/mode"
        },
        "uid": {
          "$ref": "#/definitions/uint"
        },
        "gid": {
          "$ref": "#/definitions/uint"
        },
        "xattrs": {
          "$ref": "#/definitions/xattrs"
        }
      },
      "if": {
        "properties": {
          "type": {
            "enum": [
              "chardev",
              "blockdev"
            ]
          }
        }
      },
      "then": {
        "required": [
          "devmajor",
          "devminor"
        ]
      },
      "else": {
        "not": {
          "anyOf": [
            {
              "required": [
                "devmajor"
              ]
            },
            {
              "required": [
                "devminor"
              ]
            }
          ]
        }
      }
    },
    "amendment": {
      "description": "Records added by a later step (e.g. enclavify sign) to a manifest made earlier, which stays recoverable: this document without this amendment and the ones after it, serialized as enclavify writes it, has SHA-256 `base`. Amendments only add paths (never one recorded before): regular files (authenticated or plain) and directories, without setuid/setgid bits or xattrs.",
      "type": "object",
      "required": [
        "base",
        "files",
        "entries"
      ],
      "additionalProperties": false,
      "properties": {
        "base": {
          "$ref": "#/definitions/sha256"
        },
        "files": {
          "type": "array",
          "items": {
            "allOf": [
              {
                "$ref": "#/definitions/file"
              },
              {
                "properties": {
                  "class": {
                    "enum": [
                      "authenticated",
                      "plain"
                    ]
                  }
                }
              },
              {
                "properties": {
                  "mode": {
                    "maximum": 1023,
                    "description": "no setuid/setgid bits"
                  }
                },
                "not": {
                  "required": [
                    "xattrs"
                  ]
                }
              }
            ]
          }
        },
        "entries": {
          "type": "array",
          "items": {
            "allOf": [
              {
                "$ref": "#/definitions/entry"
              },
              {
                "properties": {
                  "type": {
                    "const": "dir"
                  }
                }
              },
              {
                "properties": {
                  "mode": {
                    "maximum": 1023,
                    "description": "no setuid/setgid bits"
                  }
                },
                "not": {
                  "required": [
                    "xattrs"
                  ]
                }
              }
            ]
          }
        }
      }
    }
  },
  "properties": {
    "kind": {
      "const": "enclavify.protection-manifest"
    },
    "version": {
      "const": 2
    },
    "encryptedFormat": {
      "const": "gramine-encrypted-files-2.0"
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
            "$ref": "#/definitions/keyName"
          },
          "path": {
            "$ref": "#/definitions/absPath"
          }
        }
      }
    },
    "hostPaths": {
      "type": "array",
      "items": {
        "$ref": "#/definitions/absPath"
      }
    },
    "rules": {
      "description": "The effective rules (globs expanded, defaults included); the longest matching path decides, a file rule beats a directory rule on the same path.",
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "path",
          "class",
          "kind",
          "source"
        ],
        "additionalProperties": false,
        "properties": {
          "path": {
            "$ref": "#/definitions/absPath"
          },
          "class": {
            "$ref": "#/definitions/class"
          },
          "kind": {
            "enum": [
              "dir",
              "plain",
              "plain-file",
              "host-path",
              "authenticated",
              "default"
            ]
          },
          "fileOnly": {
            "const": true
          },
          "hostPath": {
            "const": true
          },
          "region": {
            "$ref": "#/definitions/keyName"
          },
          "source": {
            "type": "string"
          }
        }
      }
    },
    "files": {
      "description": "Every regular file but the manifest, sorted bytewise by path.",
      "type": "array",
      "items": {
        "$ref": "#/definitions/file"
      }
    },
    "symlinks": {
      "description": "Every symlink, sorted bytewise by path.",
      "type": "array",
      "items": {
        "$ref": "#/definitions/symlink"
      }
    },
    "entries": {
      "description": "Every directory (the root `/` included), device node and FIFO, sorted bytewise by path.",
      "type": "array",
      "items": {
        "$ref": "#/definitions/entry"
      }
    },
    "amendments": {
      "type": "array",
      "minItems": 1,
      "items": {
        "$ref": "#/definitions/amendment"
      }
    }
  }
};
export default schema;
