/// What a `torch.save` pickle may name and call: the storage classes, the callables a state dict
/// of tensors needs, and the value fedlora builds for each call instead of running it.
extension PickleReader {
  /// Storage classes of `torch.save`, by name, and the dtype they hold.
  static let storages: [String: DType] = [
    "FloatStorage": .f32, "DoubleStorage": .f64, "HalfStorage": .f16, "BFloat16Storage": .bf16,
    "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8, "ByteStorage": .u8,
    "BoolStorage": .bool,
  ]
  /// The globals a state dict of tensors needs, and nothing else.
  static let callables: Set<String> = [
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
  ]

  /// The call of `callable`: an allowed global fedlora builds itself, anything else opaque.
  func call(_ callable: PickleValue, _ arguments: PickleValue, at offset: Int) throws(CheckpointError)
    -> PickleValue
  {
    guard case let .global(global, allowed) = callable, allowed else {
      if case .global = callable { return .opaque }  // recorded as unsafe: the file is refused
      if case .opaque = callable { return .opaque }
      throw fail("a call of something that is not a global", at: offset)
    }
    guard case let .tuple(args) = arguments else {
      throw fail("\(global.name): arguments that are not a tuple", at: offset)
    }
    switch global.name {
    case "OrderedDict": return .dict(PickleDict())
    case "_rebuild_tensor_v2", "_rebuild_tensor":
      guard args.count >= 4, case let .storage(dtype, key) = args[0], case let .int(start) = args[1],
        case let .tuple(size) = args[2], case let .tuple(stride) = args[3]
      else { throw fail("\(global.name) with arguments that are not (storage, offset, size, stride, ...)", at: offset) }
      var shape: [Int] = []
      var strides: [Int] = []
      for value in size {
        guard case let .int(n) = value, n >= 0 else {
          throw fail("a tensor size that is not a non-negative integer", at: offset)
        }
        shape.append(n)
      }
      for value in stride {
        guard case let .int(n) = value else { throw fail("a tensor stride that is not an integer", at: offset) }
        strides.append(n)
      }
      guard start >= 0, shape.count == strides.count else {
        throw fail("a tensor of offset \(start) with \(shape.count) sizes and \(strides.count) strides", at: offset)
      }
      return .tensor(dtype: dtype, key: key, offset: start, shape: shape, strides: strides)
    default:  // _rebuild_parameter(tensor, requires_grad, hooks[, state])
      guard let first = args.first, case .tensor = first else {
        throw fail("\(global.name) of something that is not a tensor", at: offset)
      }
      return first
    }
  }
}
