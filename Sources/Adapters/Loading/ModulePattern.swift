/// A `rank_pattern` / `alpha_pattern` key, matched as PEFT matches it
/// (`re.match(rf"(.*\.)?({key})$", module)`) by a Thompson NFA: time linear in the module
/// name's length times the pattern's, whatever the pattern (a hostile config's `(.*)*x` cannot
/// stall a merge as a backtracking engine would).
///
/// Python regular-expression syntax without backtracking-only features: literals, `.`, classes
/// (`[a-z0-9_]`, `[^.]`, `\d \w \s` and their negations), groups (`(...)`, `(?:...)`), `|`,
/// `* + ?` (lazy forms too: they match the same names), `{n}`, `{n,}`, `{n,m}`, and `^`/`$`.
/// Back-references and look-arounds are refused with the reason.
public struct ModulePattern: Sendable {
  /// The pattern as written.
  public let source: String
  private let program: [Instruction]

  /// Longest pattern accepted, and most NFA states after counted repetitions are expanded.
  static let maxLength = 1_000
  static let maxStates = 20_000

  enum Instruction: Sendable {
    case match(CharacterSet)
    case split(Int, Int)
    case jump(Int)
    case lineStart, lineEnd
    case accept
  }

  /// What one step of the pattern can consume.
  struct CharacterSet: Sendable {
    var ranges: [ClosedRange<UInt32>]
    var negated: Bool

    func contains(_ c: Unicode.Scalar) -> Bool { ranges.contains { $0.contains(c.value) } != negated }

    static let any = CharacterSet(ranges: [10...10], negated: true)  // `.`: anything but a newline
    static func single(_ c: Unicode.Scalar) -> CharacterSet {
      CharacterSet(ranges: [c.value...c.value], negated: false)
    }
    static let digit: [ClosedRange<UInt32>] = [48...57]
    static let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]
    static let space: [ClosedRange<UInt32>] = [9...13, 32...32]
  }

  /// Why a pattern is refused.
  public struct Refusal: Error, Sendable {
    /// The reason, in words.
    public let message: String
  }

  /// Compiles `pattern` into PEFT's `(.*\.)?(pattern)$` as an NFA.
  /// - Parameter pattern: a `rank_pattern` or `alpha_pattern` key.
  /// - Throws: a ``Refusal`` saying why it cannot be compiled: longer than 1,000 characters, over
  ///   20,000 states once counted repetitions are expanded, malformed, or a back-reference or
  ///   look-around.
  /// - Complexity: O(pattern length × repetition counts), bounded by the state limit.
  public init(_ pattern: String) throws(Refusal) {
    guard pattern.unicodeScalars.count <= Self.maxLength else {
      throw Refusal(message: "longer than \(Self.maxLength) characters")
    }
    source = pattern
    var parser = Parser(Array(pattern.unicodeScalars))
    let node = try parser.parseAlternation()
    guard parser.position == parser.scalars.count else {
      throw Refusal(message: "unbalanced ')' at \(parser.position)")
    }
    // PEFT's wrapper: (.*\.)?(key)$
    let prefix = Node.optional(.sequence([.repeated(.set(.any), 0, nil), .set(.single("."))]))
    var program: [Instruction] = []
    try Self.compile(.sequence([prefix, node, .lineEnd]), into: &program)
    program.append(.accept)
    self.program = program
  }

  /// Whether `module` matches: the pattern matches a whole dotted suffix of the name (PEFT's rule).
  /// - Parameter module: a module name.
  /// - Returns: whether it matches.
  /// - Complexity: O(name length × pattern states), whatever the pattern.
  public func matches(_ module: String) -> Bool {
    let input = Array(module.unicodeScalars)
    var current = Set<Int>()
    addState(0, at: 0, count: input.count, to: &current)
    for (i, c) in input.enumerated() {
      var next = Set<Int>()
      for pc in current {
        if case let .match(set) = program[pc], set.contains(c) {
          addState(pc + 1, at: i + 1, count: input.count, to: &next)
        }
      }
      current = next
      if current.isEmpty { return false }
    }
    return current.contains { if case .accept = program[$0] { true } else { false } }
  }

  /// Adds `pc` and what it reaches without consuming (splits, jumps, anchors) at position `at`.
  private func addState(_ pc: Int, at position: Int, count: Int, to set: inout Set<Int>) {
    var stack = [pc]
    while let pc = stack.popLast() {
      guard set.insert(pc).inserted else { continue }
      switch program[pc] {
      case let .split(a, b): stack += [b, a]
      case let .jump(target): stack.append(target)
      case .lineStart: if position == 0 { stack.append(pc + 1) }
      case .lineEnd: if position == count { stack.append(pc + 1) }
      case .match, .accept: break
      }
    }
  }

  indirect enum Node {
    case set(CharacterSet)
    case sequence([Node])
    case alternation([Node])
    case repeated(Node, Int, Int?)
    case lineStart, lineEnd
    static func optional(_ node: Node) -> Node { .repeated(node, 0, 1) }
  }

  private static func compile(_ node: Node, into program: inout [Instruction]) throws(Refusal) {
    guard program.count <= maxStates else {
      throw Refusal(message: "too large once its repetitions are counted out (over \(maxStates) states)")
    }
    switch node {
    case let .set(set): program.append(.match(set))
    case .lineStart: program.append(.lineStart)
    case .lineEnd: program.append(.lineEnd)
    case let .sequence(nodes): for node in nodes { try compile(node, into: &program) }
    case let .alternation(branches):
      var jumps: [Int] = []
      for (index, branch) in branches.enumerated() {
        if index < branches.count - 1 {
          let split = program.count
          program.append(.split(split + 1, -1))
          try compile(branch, into: &program)
          jumps.append(program.count)
          program.append(.jump(-1))
          program[split] = .split(split + 1, program.count)
        } else {
          try compile(branch, into: &program)
        }
      }
      for jump in jumps { program[jump] = .jump(program.count) }
    case let .repeated(inner, minimum, maximum):
      for _ in 0..<minimum { try compile(inner, into: &program) }
      if let maximum {
        // Each optional copy: split(take, skip-to-end).
        var splits: [Int] = []
        for _ in minimum..<max(minimum, maximum) {
          splits.append(program.count)
          program.append(.split(program.count + 1, -1))
          try compile(inner, into: &program)
        }
        for split in splits { program[split] = .split(split + 1, program.count) }
      } else {
        let loop = program.count
        program.append(.split(loop + 1, -1))
        try compile(inner, into: &program)
        program.append(.jump(loop))
        program[loop] = .split(loop + 1, program.count)
      }
    }
  }
}
