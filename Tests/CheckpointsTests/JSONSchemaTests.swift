import Checkpoints
import Foundation
import TestSupport
import Testing

@Suite("The JSON Schema validator of the tests, and the schemas of docs/schemas")
struct JSONSchemaTests {
  func schema(_ text: String) throws -> JSONSchema { try JSONSchema(JSON.parse(text, path: "schema")) }

  func errors(_ schema: JSONSchema, _ instance: String) throws -> [String] {
    schema.validate(try JSON.parse(instance, path: "instance"))
  }

  static let document = """
    {
      "type": "object", "additionalProperties": false, "required": ["name", "rank", "layers"],
      "properties": {
        "name": {"type": "string"},
        "rank": {"type": ["integer", "null"], "minimum": 1},
        "kind": {"enum": ["a", "b", null]},
        "version": {"const": 1},
        "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}}
      },
      "$defs": {
        "layer": {
          "type": "object", "additionalProperties": false, "required": ["module"],
          "properties": {"module": {"type": "string", "pattern": "^m[0-9]+$"}},
          "patternProperties": {"^cos_[1-9][0-9]*$": {"type": ["number", "null"]}}
        }
      }
    }
    """

  @Test("Documents of the schema's shape validate")
  func accepts() throws {
    let schema = try schema(Self.document)
    #expect(
      try errors(schema, #"{"name": "x", "rank": 4, "layers": [{"module": "m1", "cos_1": 0.5, "cos_12": null}]}"#)
        .isEmpty)
    #expect(
      try errors(schema, #"{"name": "x", "rank": null, "kind": null, "version": 1, "layers": [{"module": "m2"}]}"#)
        .isEmpty)
    #expect(try errors(schema, #"{"name": "x", "rank": 1e0, "layers": [{"module": "m2"}]}"#).count == 1)
  }

  @Test("Each broken rule is reported with the JSON path of the value")
  func rejects() throws {
    let schema = try schema(Self.document)
    let cases: [(instance: String, error: String)] = [
      (
        #"{"name": "x", "rank": 4.0, "layers": [{"module": "m1"}]}"#,
        "$.rank: expected integer or null, found number 4.0"
      ),
      (#"{"name": "x", "rank": 0, "layers": [{"module": "m1"}]}"#, "$.rank: 0.0 is below the minimum 1.0"),
      (#"{"rank": 4, "layers": [{"module": "m1"}]}"#, "$: missing required key 'name'"),
      (#"{"name": "x", "rank": 4, "layers": [{"module": "m1"}], "extra": 1}"#, "$: unexpected key 'extra'"),
      (#"{"name": "x", "rank": 4, "layers": []}"#, "$.layers: 0 items, at least 1 required"),
      (#"{"name": "x", "rank": 4, "kind": "c", "layers": [{"module": "m1"}]}"#, #"$.kind: string "c" is not one of"#),
      (
        #"{"name": "x", "rank": 4, "version": 2, "layers": [{"module": "m1"}]}"#,
        "$.version: expected 1, found number 2"
      ),
      (#"{"name": "x", "rank": 4, "layers": [{"module": "m1", "cos_0": 1}]}"#, "$.layers[0]: unexpected key 'cos_0'"),
      (
        #"{"name": "x", "rank": 4, "layers": [{"module": "m1", "cos_2": "nan"}]}"#, "$.layers[0].cos_2: expected number"
      ),
      (#"{"name": "x", "rank": 4, "layers": [{"module": "x1"}]}"#, "$.layers[0].module: string \"x1\" does not match"),
      (#"[1]"#, "$: expected object, found array of 1"),
    ]
    for (instance, error) in cases {
      let found = try errors(schema, instance)
      #expect(found.count == 1 && found[0].hasPrefix(error), "\(instance): \(found)")
    }
  }

  @Test("oneOf takes exactly one branch, anyOf at least one; boolean schemas; additionalProperties as a schema")
  func combinators() throws {
    let schema = try schema(
      """
      {
        "oneOf": [
          {"type": "object", "required": ["ok", "error"], "properties": {"ok": {"const": false}}},
          {"type": "object", "required": ["ok"], "properties": {"ok": {"const": true}, "error": false}}
        ],
        "anyOf": [{"type": "object", "additionalProperties": {"type": ["boolean", "object"]}}]
      }
      """)
    #expect(try errors(schema, #"{"ok": true}"#).isEmpty)
    #expect(try errors(schema, #"{"ok": false, "error": {}}"#).isEmpty)
    #expect(
      try errors(schema, #"{"ok": true, "error": {}}"#).first?.hasPrefix("$: matches none of the 2 oneOf") == true)
    #expect(try errors(schema, #"{"ok": false}"#).first?.contains("missing required key 'error'") == true)
    #expect(
      try errors(schema, #"{"ok": false, "error": 1}"#).first?.hasPrefix("$: matches none of the 1 anyOf") == true)
    let both = try self.schema(#"{"oneOf": [{"type": "number"}, {"type": "integer"}]}"#)
    #expect(try errors(both, "3").first?.hasPrefix("$: matches oneOf branches 0, 1") == true)
    #expect(try errors(both, "3.5").isEmpty)
  }

  @Test("A keyword the validator does not implement is an error, never silently passed")
  func unsupportedKeywords() throws {
    let schema = try schema(#"{"type": "string", "maxLength": 3, "properties": {"a": {"if": true}}}"#)
    #expect(try errors(schema, #""abcdef""#) == ["$: unsupported schema keyword 'maxLength'"])
    #expect(
      schema.problems().sorted() == ["#/properties/a: unsupported keyword 'if'", "#: unsupported keyword 'maxLength'"])
    #expect(
      try self.schema(##"{"$ref": "#/$defs/missing"}"##).problems() == [##"#: unresolvable $ref "#/$defs/missing""##])
  }

  @Test("Every schema in docs/schemas loads, uses only implemented keywords, and takes its failure document")
  func documentedSchemas() throws {
    let schemas = try CLI.schemas.get()
    #expect(
      Set(schemas.keys) == [
        "fedlora/1", "fedlora.inspect/1", "fedlora.merge/1", "fedlora.convert/1", "fedlora.verify/1",
        "fedlora.inspect.file/1", "fedlora.inspect.adapter/1", "fedlora.inspect.clients/1",
      ])
    for (name, schema) in schemas {
      #expect(schema.problems().isEmpty, "\(name): \(schema.problems())")
      let failure = #"{"schema": "\#(name)", "ok": false, "warnings": ["w"], "error": {"code": "io", "message": "m"}}"#
      let found = try errors(schema, failure)
      #expect(found.isEmpty, "\(name): \(found)")
      let wrongName =
        #"{"schema": "fedlora.other/1", "ok": false, "warnings": [], "error": {"code": "io", "message": "m"}}"#
      #expect(try !errors(schema, wrongName).isEmpty, "\(name)")
      let noCode = #"{"schema": "\#(name)", "ok": false, "warnings": [], "error": {"message": "m"}}"#
      #expect(try !errors(schema, noCode).isEmpty, "\(name)")
    }
  }
}
