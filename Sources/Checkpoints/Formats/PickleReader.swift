/// Interprets the pickle of a `torch.save` archive (`data.pkl`) without running it: a stack
/// machine over the opcodes `torch.save` writes, building `PickleValue`s, with every global it
/// names checked against an allowlist (`PickleReader+Torch.swift`) and every size bounded.
struct PickleReader {
  static let maxDepth = 256

  let bytes: [UInt8]
  let path: String
  private var position = 0
  /// The values and how deeply each nests containers: bounded, so no value's teardown recurses
  /// past `maxDepth` (a crafted pickle of a million TUPLE1s would otherwise overflow the stack).
  private var stack: [(value: PickleValue, depth: Int)] = []
  private var marks: [Int] = []
  private var memo: [Int: (value: PickleValue, depth: Int)] = [:]
  /// Every global named, and those outside the allowlist, in order of appearance.
  private(set) var seen: [PickleGlobal] = []
  private(set) var unsafe: [PickleGlobal] = []

  init(bytes: [UInt8], path: String) {
    self.bytes = bytes
    self.path = path
  }

  /// A `badPickle` error at `offset` (by default the current position).
  func fail(_ message: String, at offset: Int? = nil) -> CheckpointError {
    .badPickle(path: path, offset: offset ?? position, message: message)
  }

  private mutating func take(_ count: Int) throws(CheckpointError) -> ArraySlice<UInt8> {
    guard count >= 0, count <= bytes.count - position else {
      throw fail("truncated: \(count) bytes wanted, \(bytes.count - position) left")
    }
    defer { position += count }
    return bytes[position..<(position + count)]
  }

  private mutating func integer(_ count: Int) throws(CheckpointError) -> UInt64 {
    var value: UInt64 = 0
    for (shift, byte) in try take(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
    return value
  }

  private mutating func line() throws(CheckpointError) -> String {
    guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated line") }
    let text = String(decoding: bytes[position..<end], as: UTF8.self)
    position = end + 1
    return text
  }

  private mutating func text(_ count: Int) throws(CheckpointError) -> String {
    let start = position
    guard let text = String(validating: try take(count), as: UTF8.self) else {
      throw fail("a string that is not UTF-8", at: start)
    }
    return text
  }

  private mutating func popItem() throws(CheckpointError) -> (value: PickleValue, depth: Int) {
    guard stack.count > (marks.last ?? 0), let item = stack.popLast() else { throw fail("stack underflow") }
    return item
  }

  private mutating func pop() throws(CheckpointError) -> PickleValue { try popItem().value }

  /// The values pushed since the last MARK (which is removed), and their deepest nesting.
  private mutating func popMark() throws(CheckpointError) -> ([PickleValue], Int) {
    guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no MARK to pop to") }
    defer { stack.removeSubrange(mark...) }
    return (stack[mark...].map(\.value), stack[mark...].map(\.depth).max() ?? 0)
  }

  private mutating func push(_ value: PickleValue, depth: Int = 0) throws(CheckpointError) {
    guard depth <= Self.maxDepth else { throw fail("values nested deeper than \(Self.maxDepth)") }
    stack.append((value, depth))
    guard stack.count <= 1 << 24 else { throw fail("more than 2^24 values on the stack") }
  }

  /// Records that the container on top of the stack now holds something `depth` deep.
  private mutating func deepen(_ depth: Int) throws(CheckpointError) {
    guard depth + 1 <= Self.maxDepth, !stack.isEmpty else { throw fail("values nested deeper than \(Self.maxDepth)") }
    let deeper = max(stack[stack.count - 1].depth, depth + 1)
    stack[stack.count - 1].depth = deeper
    switch stack[stack.count - 1].value {
    case let .list(list):
      guard !list.frozen else { throw fail("a list filled after it was shared") }
      list.depth = deeper
    case let .dict(dict):
      guard !dict.frozen else { throw fail("a dict filled after it was shared") }
      dict.depth = deeper
    default: break
    }
  }

  private mutating func global(_ module: String, _ name: String, at offset: Int) -> PickleValue {
    let global = PickleGlobal(module: module, name: name, offset: offset)
    let allowed = (module == "torch" && Self.storages[name] != nil) || Self.callables.contains(module + "." + name)
    seen.append(global)
    if !allowed { unsafe.append(global) }
    return .global(global, allowed: allowed)
  }

  /// Runs the opcodes to STOP and returns the value built; unsafe globals are collected in
  /// `unsafe` (the caller refuses the file when there is any).
  mutating func read() throws(CheckpointError) -> PickleValue {
    while true {
      let offset = position
      let opcode = try take(1).first!
      switch opcode {
      case 0x80: _ = try take(1)  // PROTO
      case 0x95: _ = try take(8)  // FRAME
      case 0x2E:  // STOP
        return try pop()
      case 0x28:
        marks.append(stack.count)
        guard marks.count <= Self.maxDepth else { throw fail("MARKs nested deeper than \(Self.maxDepth)") }
      case 0x4E: try push(.none)
      case 0x88: try push(.bool(true))
      case 0x89: try push(.bool(false))
      case 0x4B: try push(.int(Int(try integer(1))))  // BININT1
      case 0x4D: try push(.int(Int(try integer(2))))  // BININT2
      case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try integer(4)))))  // BININT
      case 0x8A: try push(.int(try long1()))  // LONG1
      case 0x47:  // BINFLOAT, big-endian
        try push(.float(Double(bitPattern: try take(8).reduce(0) { $0 << 8 | UInt64($1) })))
      case 0x58: try push(.string(try text(Int(try integer(4)))))  // BINUNICODE
      case 0x8C: try push(.string(try text(Int(try integer(1)))))  // SHORT_BINUNICODE
      case 0x8D:  // BINUNICODE8
        let count = try integer(8)
        guard count <= UInt64(bytes.count) else { throw fail("a string of \(count) bytes") }
        try push(.string(try text(Int(count))))
      case 0x43: try push(.bytes(Array(try take(Int(try integer(1))))))  // SHORT_BINBYTES
      case 0x42: try push(.bytes(Array(try take(Int(try integer(4))))))  // BINBYTES
      case 0x55: try push(.bytes(Array(try take(Int(try integer(1))))))  // SHORT_BINSTRING
      case 0x29: try push(.tuple([]))
      case 0x85, 0x86, 0x87: try tuple(of: Int(opcode - 0x84))  // TUPLE1, TUPLE2, TUPLE3
      case 0x74:  // TUPLE
        let (items, depth) = try popMark()
        try push(.tuple(items), depth: depth + 1)
      case 0x5D: try push(.list(PickleList()))  // EMPTY_LIST
      case 0x7D: try push(.dict(PickleDict()))  // EMPTY_DICT
      case 0x61: try append(at: offset)  // APPEND
      case 0x65: try appends(at: offset)  // APPENDS
      case 0x73: try setItem(at: offset)  // SETITEM
      case 0x75: try setItems(at: offset)  // SETITEMS
      case 0x71: memo[Int(try integer(1))] = stack.last  // BINPUT
      case 0x72: memo[Int(try integer(4))] = stack.last  // LONG_BINPUT
      case 0x94: memo[memo.count] = stack.last  // MEMOIZE
      case 0x68, 0x6A: try memoGet(Int(try integer(opcode == 0x68 ? 1 : 4)), at: offset)  // BINGET, LONG_BINGET
      case 0x63:  // GLOBAL
        let module = try line()
        try push(global(module, try line(), at: offset))
      case 0x93: try stackGlobal(at: offset)  // STACK_GLOBAL
      case 0x51: try persistentID(at: offset)  // BINPERSID
      case 0x52, 0x81:  // REDUCE, NEWOBJ
        let arguments = try popItem()
        let callable = try pop()
        try push(try call(callable, arguments.value, at: offset), depth: arguments.depth)
      case 0x62:  // BUILD: the state of an object built by an allowed call (a Parameter's, a dict's): kept out
        _ = try pop()
      default:
        throw fail("opcode 0x\(String(opcode, radix: 16)) is not one torch.save writes", at: offset)
      }
    }
  }

  // MARK: Opcodes of more than a line (each at `offset`, the opcode's byte)

  /// LONG1: a little-endian two's-complement integer of at most 8 bytes.
  private mutating func long1() throws(CheckpointError) -> Int {
    let count = Int(try integer(1))
    guard count <= 8 else { throw fail("an integer of \(count) bytes") }
    var value = try integer(count)
    if count > 0, count < 8, value & (1 << UInt64(8 * count - 1)) != 0 { value |= ~0 << UInt64(8 * count) }
    return Int(Int64(bitPattern: value))
  }

  /// TUPLE1, TUPLE2, TUPLE3: the top `count` values as a tuple.
  private mutating func tuple(of count: Int) throws(CheckpointError) {
    var items: [(value: PickleValue, depth: Int)] = []
    for _ in 0..<count { items.insert(try popItem(), at: 0) }
    try push(.tuple(items.map(\.value)), depth: 1 + (items.map(\.depth).max() ?? 0))
  }

  /// APPEND: the top value into the list below it.
  private mutating func append(at offset: Int) throws(CheckpointError) {
    let item = try popItem()
    guard case let .list(list)? = stack.last?.value else {
      throw fail("APPEND to something not a list", at: offset)
    }
    try deepen(item.depth)
    list.items.append(item.value)
  }

  /// APPENDS: the values since the last MARK into the list below them.
  private mutating func appends(at offset: Int) throws(CheckpointError) {
    let (values, depth) = try popMark()
    guard case let .list(list)? = stack.last?.value else {
      throw fail("APPENDS to something not a list", at: offset)
    }
    try deepen(depth)
    list.items += values
  }

  /// SETITEM: the top key and value into the dict below them.
  private mutating func setItem(at offset: Int) throws(CheckpointError) {
    let value = try popItem()
    let key = try popItem()
    guard case let .dict(dict)? = stack.last?.value else {
      throw fail("SETITEM on something not a dict", at: offset)
    }
    try deepen(max(key.depth, value.depth))
    dict.items.append((key.value, value.value))
  }

  /// SETITEMS: the key/value pairs since the last MARK into the dict below them.
  private mutating func setItems(at offset: Int) throws(CheckpointError) {
    let (values, depth) = try popMark()
    guard values.count % 2 == 0, case let .dict(dict)? = stack.last?.value else {
      throw fail("SETITEMS on something not a dict", at: offset)
    }
    try deepen(depth)
    for index in stride(from: 0, to: values.count, by: 2) { dict.items.append((values[index], values[index + 1])) }
  }

  /// BINGET, LONG_BINGET: pushes memo entry `key`; a list or dict read back is shared, so frozen.
  private mutating func memoGet(_ key: Int, at offset: Int) throws(CheckpointError) {
    guard let item = memo[key] else { throw fail("memo \(key) read before it is written", at: offset) }
    switch item.value {
    case let .list(list):
      list.frozen = true
      try push(item.value, depth: list.depth)
    case let .dict(dict):
      dict.frozen = true
      try push(item.value, depth: dict.depth)
    default: try push(item.value, depth: item.depth)
    }
  }

  /// STACK_GLOBAL: the global named by the two strings on top (module, then name).
  private mutating func stackGlobal(at offset: Int) throws(CheckpointError) {
    let name = try pop()
    let module = try pop()
    guard case let .string(m) = module, case let .string(n) = name else {
      throw fail("STACK_GLOBAL of non-strings", at: offset)
    }
    try push(global(m, n, at: offset))
  }

  /// BINPERSID: a torch storage, `('storage', StorageClass, key, location, numel)`.
  private mutating func persistentID(at offset: Int) throws(CheckpointError) {
    let id = try pop()
    guard case let .tuple(fields) = id, fields.count >= 3, case .string("storage") = fields[0],
      case let .global(type, true) = fields[1], let dtype = Self.storages[type.name],
      case let .string(key) = fields[2]
    else { throw fail("a persistent id that is not a torch storage", at: offset) }
    try push(.storage(dtype: dtype, key: key))
  }
}
