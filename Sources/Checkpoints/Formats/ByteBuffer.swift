/// Little-endian serialisation of GGUF header fields.
struct ByteBuffer {
  var bytes: [UInt8] = []

  mutating func append<T: FixedWidthInteger>(_ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func append(_ string: String) {
    append(UInt64(string.utf8.count))
    bytes.append(contentsOf: string.utf8)
  }

  mutating func append(_ value: GGUFValue) {
    switch value {
    case let .u8(v): append(v)
    case let .i8(v): append(v)
    case let .u16(v): append(v)
    case let .i16(v): append(v)
    case let .u32(v): append(v)
    case let .i32(v): append(v)
    case let .f32(v): append(v.bitPattern)
    case let .bool(v): append(UInt8(v ? 1 : 0))
    case let .string(v): append(v)
    case let .array(type, values):
      append(type.rawValue)
      append(UInt64(values.count))
      for element in values { append(element) }
    case let .u64(v): append(v)
    case let .i64(v): append(v)
    case let .f64(v): append(v.bitPattern)
    }
  }
}
