/// The value types of GGUF metadata, with their on-disk ids.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
  case u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, bool = 7, string = 8, array = 9
  case u64 = 10, i64 = 11, f64 = 12

  /// The fewest bytes one value of this type takes on disk (an array or string: its length field).
  var minimumSize: Int {
    switch self {
    case .u8, .i8, .bool: 1
    case .u16, .i16: 2
    case .u32, .i32, .f32: 4
    case .u64, .i64, .f64, .string: 8
    case .array: 12
    }
  }

  /// The case name (`u32`, `string`, ...), for messages.
  public var name: String { String(describing: self) }
}

/// One GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
  case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), f32(Float), bool(Bool)
  case string(String)
  case array(GGUFValueType, [GGUFValue])
  case u64(UInt64), i64(Int64), f64(Double)

  /// The type id written before this value on disk (`.array` for an array, whatever its elements).
  public var type: GGUFValueType {
    switch self {
    case .u8: .u8
    case .i8: .i8
    case .u16: .u16
    case .i16: .i16
    case .u32: .u32
    case .i32: .i32
    case .f32: .f32
    case .bool: .bool
    case .string: .string
    case .array: .array
    case .u64: .u64
    case .i64: .i64
    case .f64: .f64
    }
  }

  /// The text of a `.string` value; nil for every other type.
  public var stringValue: String? { if case let .string(s) = self { s } else { nil } }

  /// The value as a Double when it is a number of any width.
  public var doubleValue: Double? {
    switch self {
    case let .u8(v): Double(v)
    case let .i8(v): Double(v)
    case let .u16(v): Double(v)
    case let .i16(v): Double(v)
    case let .u32(v): Double(v)
    case let .i32(v): Double(v)
    case let .f32(v): Double(v)
    case let .u64(v): Double(v)
    case let .i64(v): Double(v)
    case let .f64(v): v
    default: nil
    }
  }

  /// The value as JSON (what `inspect --json` shows of a GGUF's metadata).
  /// - Parameter limit: the most elements of an array shown; a longer one is cut, with a note of its
  ///   length (a vocabulary holds 10^5 strings).
  /// - Returns: a number, string, bool or array; non-finite floats as strings.
  /// - Complexity: O(min(elements, `limit`)).
  public func json(arrayLimit limit: Int = .max) -> JSON {
    switch self {
    case let .u8(v): JSON(Int(v))
    case let .i8(v): JSON(Int(v))
    case let .u16(v): JSON(Int(v))
    case let .i16(v): JSON(Int(v))
    case let .u32(v): JSON(Int(v))
    case let .i32(v): JSON(Int(v))
    case let .u64(v): JSON(v)
    case let .i64(v): JSON(Int(v))
    case let .f32(v): v.isFinite ? .number("\(v)") : .string("\(v)")
    case let .f64(v): v.isFinite ? .number("\(v)") : .string("\(v)")
    case let .bool(v): .bool(v)
    case let .string(v): .string(v)
    case let .array(_, values):
      values.count <= limit
        ? .array(values.map { $0.json() })
        : .object([
          ("type", .string("array")), ("count", JSON(values.count)),
          ("first", .array(values.prefix(limit).map { $0.json() })),
        ])
    }
  }
}
