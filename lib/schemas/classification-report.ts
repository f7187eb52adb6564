/* Generated from schemas/classification-report.schema.json by `npm run schemas`; do not edit. */
/** The JSON Schema `schemas/classification-report.schema.json`, as a module. */
const schema: { readonly $id: string; readonly [key: string]: unknown } = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "urn:enclavify:schema:classification-report:1",
  "title": "enclavify classification report",
  "description": "What fileClassify decided for an image: per class the number of files and bytes, the encrypted regions, the effective rules, the entrypoint's startup files (kept authenticated) and every regular file with its class and the rule that decided it. See docs/protection.md.",
  "type": "object",
  "required": [
    "kind",
    "version",
    "totals",
    "regions",
    "hostPaths",
    "rules",
    "startup",
    "warnings",
    "files"
  ],
  "additionalProperties": false,
  "definitions": {
    "absPath": {
      "type": "string",
      "pattern": "^/"
    },
    "class": {
      "enum": [
        "encrypted",
        "authenticated",
        "plain"
      ]
    },
    "count": {
      "type": "integer",
      "minimum": 0
    },
    "totals": {
      "type": "object",
      "required": [
        "files",
        "bytes"
      ],
      "additionalProperties": false,
      "properties": {
        "files": {
          "$ref": "#/definitions/count"
        },
        "bytes": {
          "$ref": "#/definitions/count"
        }
      }
    }
  },
  "properties": {
    "kind": {
      "const": "enclavify.classification-report"
    },
    "version": {
      "const": 1
    },
    "totals": {
      "type": "object",
      "required": [
        "encrypted",
        "authenticated",
        "plain"
      ],
      "additionalProperties": false,
      "properties": {
        "encrypted": {
          "$ref": "#/definitions/totals"
        },
        "authenticated": {
          "$ref": "#/definitions/totals"
        },
        "plain": {
          "$ref": "#/definitions/totals"
        }
      }
    },
    "regions": {
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "name",
          "path",
          "files",
          "bytes"
        ],
        "additionalProperties": false,
        "properties": {
          "name": {
            "type": "string"
          },
          "path": {
            "$ref": "#/definitions/absPath"
          },
          "files": {
            "$ref": "#/definitions/count"
          },
          "bytes": {
            "$ref": "#/definitions/count"
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
          "source": {
            "type": "string"
          },
          "fileOnly": {
            "const": true
          },
          "region": {
            "type": "string"
          },
          "hostPath": {
            "const": true
          }
        }
      }
    },
    "startup": {
      "description": "The entrypoint's startup files, or null when none were found (no Entrypoint/Cmd, program missing: see warnings).",
      "oneOf": [
        {
          "type": "null"
        },
        {
          "type": "object",
          "required": [
            "command",
            "program",
            "scripts",
            "executables",
            "libraries",
            "files",
            "missing",
            "notes"
          ],
          "additionalProperties": false,
          "properties": {
            "command": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "program": {
              "$ref": "#/definitions/absPath"
            },
            "scripts": {
              "type": "array",
              "items": {
                "type": "object",
                "required": [
                  "script",
                  "line",
                  "interpreter"
                ],
                "additionalProperties": false,
                "properties": {
                  "script": {
                    "$ref": "#/definitions/absPath"
                  },
                  "line": {
                    "type": "string"
                  },
                  "interpreter": {
                    "$ref": "#/definitions/absPath"
                  }
                }
              }
            },
            "executables": {
              "type": "array",
              "items": {
                "$ref": "#/definitions/absPath"
              }
            },
            "interpreter": {
              "$ref": "#/definitions/absPath"
            },
            "libraries": {
              "type": "array",
              "items": {
                "type": "object",
                "required": [
                  "soname",
                  "path",
                  "neededBy",
                  "via"
                ],
                "additionalProperties": false,
                "properties": {
                  "soname": {
                    "type": "string"
                  },
                  "path": {
                    "$ref": "#/definitions/absPath"
                  },
                  "neededBy": {
                    "type": "array",
                    "items": {
                      "$ref": "#/definitions/absPath"
                    }
                  },
                  "via": {
                    "type": "string"
                  }
                }
              }
            },
            "files": {
              "type": "array",
              "items": {
                "$ref": "#/definitions/absPath"
              }
            },
            "missing": {
              "type": "array",
              "items": {
                "type": "object",
                "required": [
                  "soname",
                  "neededBy"
                ],
                "additionalProperties": false,
                "properties": {
                  "soname": {
                    "type": "string"
                  },
                  "neededBy": {
                    "type": "array",
                    "items": {
                      "$ref": "#/definitions/absPath"
                    }
                  }
                }
              }
            },
            "notes": {
              "type": "array",
              "items": {
                "type": "string"
              }
            }
          }
        }
      ]
    },
    "warnings": {
      "type": "array",
      "items": {
        "type": "string"
      }
    },
    "files": {
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "path",
          "class",
          "reason",
          "size"
        ],
        "additionalProperties": false,
        "properties": {
          "path": {
            "$ref": "#/definitions/absPath"
          },
          "class": {
            "$ref": "#/definitions/class"
          },
          "region": {
            "type": "string"
          },
          "reason": {
            "type": "string"
          },
          "size": {
            "$ref": "#/definitions/count"
          },
          "hostPath": {
            "const": true
          },
          "startup": {
            "const": true
          },
          "symlinkTo": {
            "$ref": "#/definitions/absPath"
          }
        }
      }
    },
    "symlinkCopies": {
      "description": "Symlinks in encrypted regions written as encrypted copies of their targets (Gramine's encrypted mounts cannot hold symlinks).",
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "path",
          "target",
          "size"
        ],
        "additionalProperties": false,
        "properties": {
          "path": {
            "$ref": "#/definitions/absPath"
          },
          "target": {
            "$ref": "#/definitions/absPath"
          },
          "size": {
            "$ref": "#/definitions/count"
          }
        }
      }
    }
  }
};
export default schema;
