/// An element type of a tensor on disk: every safetensors dtype and every ggml type.
///
/// The raw value is the name users see: the safetensors spelling where one exists
/// (`BF16`, `F8_E4M3`), otherwise ggml's (`Q8_0`, `IQ4_XS`).
public enum DType: String, CaseIterable, Hashable, Sendable, Codable {
  case bool = "BOOL", u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", i32 = "I32", u32 = "U32"
  case i64 = "I64", u64 = "U64", f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64", c64 = "C64"
  case f8E4M3 = "F8_E4M3", f8E5M2 = "F8_E5M2", f8E8M0 = "F8_E8M0"
  case f8E4M3FNUZ = "F8_E4M3FNUZ", f8E5M2FNUZ = "F8_E5M2FNUZ"
  case f6E2M3 = "F6_E2M3", f6E3M2 = "F6_E3M2", f4 = "F4"
  case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0", q8_1 = "Q8_1"
  case q2K = "Q2_K", q3K = "Q3_K", q4K = "Q4_K", q5K = "Q5_K", q6K = "Q6_K", q8K = "Q8_K"
  case iq2XXS = "IQ2_XXS", iq2XS = "IQ2_XS", iq3XXS = "IQ3_XXS", iq1S = "IQ1_S", iq4NL = "IQ4_NL"
  case iq3S = "IQ3_S", iq2S = "IQ2_S", iq4XS = "IQ4_XS", iq1M = "IQ1_M"
  case tq1_0 = "TQ1_0", tq2_0 = "TQ2_0", mxfp4 = "MXFP4"

  /// The dtype a safetensors header names, or nil for an unknown name (or a ggml-only type).
  /// - Parameter name: the header's `dtype` string, such as `BF16`.
  public init?(safetensorsName name: String) {
    guard let dtype = DType(rawValue: name), dtype.bitsPerElement != nil else { return nil }
    self = dtype
  }

  /// The dtype of a ggml type id, or nil for unknown and retired ids.
  /// - Parameter id: the `type` of a GGUF tensor info.
  public init?(ggmlType id: UInt32) {
    guard let dtype = DType.byGGMLType[id] else { return nil }
    self = dtype
  }

  /// Bits per element for the safetensors dtypes; nil for ggml block types.
  public var bitsPerElement: Int? {
    switch self {
    case .bool, .u8, .i8, .f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 8
    case .i16, .u16, .f16, .bf16: 16
    case .i32, .u32, .f32: 32
    case .i64, .u64, .f64, .c64: 64
    case .f6E2M3, .f6E3M2: 6
    case .f4: 4
    default: nil
    }
  }

  /// The ggml type id, for the types GGUF can hold.
  public var ggmlType: UInt32? {
    switch self {
    case .f32: 0
    case .f16: 1
    case .q4_0: 2
    case .q4_1: 3
    case .q5_0: 6
    case .q5_1: 7
    case .q8_0: 8
    case .q8_1: 9
    case .q2K: 10
    case .q3K: 11
    case .q4K: 12
    case .q5K: 13
    case .q6K: 14
    case .q8K: 15
    case .iq2XXS: 16
    case .iq2XS: 17
    case .iq3XXS: 18
    case .iq1S: 19
    case .iq4NL: 20
    case .iq3S: 21
    case .iq2S: 22
    case .iq4XS: 23
    case .i8: 24
    case .i16: 25
    case .i32: 26
    case .i64: 27
    case .f64: 28
    case .iq1M: 29
    case .bf16: 30
    case .tq1_0: 34
    case .tq2_0: 35
    case .mxfp4: 39
    default: nil
    }
  }

  /// Elements per block and bytes per block (a plain type is a block of one element).
  public var block: (elements: Int, bytes: Int) {
    switch self {
    case .q4_0, .iq4NL: (32, 18)
    case .q4_1: (32, 20)
    case .q5_0: (32, 22)
    case .q5_1: (32, 24)
    case .q8_0: (32, 34)
    case .q8_1: (32, 36)
    case .mxfp4: (32, 17)
    case .q2K: (256, 84)
    case .q3K, .iq3S: (256, 110)
    case .q4K: (256, 144)
    case .q5K: (256, 176)
    case .q6K: (256, 210)
    case .q8K: (256, 292)
    case .iq2XXS, .tq2_0: (256, 66)
    case .iq2XS: (256, 74)
    case .iq3XXS: (256, 98)
    case .iq1S: (256, 50)
    case .iq2S: (256, 82)
    case .iq4XS: (256, 136)
    case .iq1M: (256, 56)
    case .tq1_0: (256, 54)
    default: (1, (bitsPerElement ?? 8) / 8)
    }
  }

  /// Whether fedlora can widen this dtype to Float for arithmetic.
  public var isComputable: Bool {
    switch self {
    case .f16, .bf16, .f32, .f64, .f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ, .q8_0, .q4_0: true
    default: false
    }
  }

  /// Whether this is an integer or boolean type (values that cannot be NaN or infinite).
  public var isInteger: Bool {
    switch self {
    case .bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64: true
    default: false
    }
  }

  /// Whether this is a floating-point type stored element by element (what outputs may use).
  public var isPlainFloat: Bool { self == .f16 || self == .bf16 || self == .f32 || self == .f64 }

  /// The bytes `elements` elements take (whole blocks for ggml block types).
  /// - Parameter elements: the element count.
  /// - Returns: the byte count; nil on overflow, or when the elements end inside a block or a byte.
  public func byteCount(elements: UInt64) -> UInt64? {
    if let bits = bitsPerElement {
      let (total, overflow) = elements.multipliedReportingOverflow(by: UInt64(bits))
      guard !overflow, total % 8 == 0 else { return nil }
      return total / 8
    }
    let (elementsPerBlock, bytesPerBlock) = block
    guard elements % UInt64(elementsPerBlock) == 0 else { return nil }
    let (total, overflow) = (elements / UInt64(elementsPerBlock)).multipliedReportingOverflow(by: UInt64(bytesPerBlock))
    return overflow ? nil : total
  }

  private static let byGGMLType: [UInt32: DType] = Dictionary(
    uniqueKeysWithValues: allCases.compactMap { dtype in dtype.ggmlType.map { ($0, dtype) } })
}

/// The product of `shape`, or nil on overflow; 0 when any dimension is 0, whatever the others
/// (`[2^62, 2^62, 0]` holds no element and overflows nothing).
package func elementCount<S: Sequence>(_ shape: S) -> UInt64? where S.Element == UInt64 {
  if shape.contains(0) { return 0 }
  var count: UInt64 = 1
  for dimension in shape {
    let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
    if overflow { return nil }
    count = product
  }
  return count
}

/// The product of a shape in `Int`s, or nil when a dimension is negative or the product
/// overflows; 0 when any dimension is 0.
package func elementCount(_ shape: [Int]) -> Int? {
  guard shape.allSatisfy({ $0 >= 0 }), let count = elementCount(shape.map { UInt64($0) }), count <= UInt64(Int.max)
  else { return nil }
  return Int(count)
}
