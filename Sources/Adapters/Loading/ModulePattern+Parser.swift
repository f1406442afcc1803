extension ModulePattern {
  /// A recursive-descent parser of the accepted syntax (nesting is bounded by the length).
  struct Parser {
    let scalars: [Unicode.Scalar]
    var position = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    mutating func parseAlternation() throws(Refusal) -> Node {
      var branches = [try parseSequence()]
      while peek == "|" {
        position += 1
        branches.append(try parseSequence())
      }
      return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func parseSequence() throws(Refusal) -> Node {
      var nodes: [Node] = []
      while let c = peek, c != "|", c != ")" {
        var atom = try parseAtom()
        while let q = peek, "*+?{".unicodeScalars.contains(q) {
          guard let (minimum, maximum) = try parseQuantifier() else { break }
          if case .lineStart = atom { throw Refusal(message: "a quantifier after an anchor at \(position)") }
          if case .lineEnd = atom { throw Refusal(message: "a quantifier after an anchor at \(position)") }
          atom = .repeated(atom, minimum, maximum)
          if peek == "?" { position += 1 }  // lazy: the same set of names matches
        }
        nodes.append(atom)
      }
      return .sequence(nodes)
    }

    /// `* + ? {n} {n,} {n,m}`; nil for a `{` that is a literal (as Python reads `a{x}`).
    mutating func parseQuantifier() throws(Refusal) -> (Int, Int?)? {
      guard let c = peek else { return nil }
      switch c {
      case "*":
        position += 1
        return (0, nil)
      case "+":
        position += 1
        return (1, nil)
      case "?":
        position += 1
        return (0, 1)
      default:
        let start = position
        position += 1
        let minimum = number()
        var maximum = minimum
        if peek == "," {
          position += 1
          maximum = number()
          if maximum == nil, minimum != nil { maximum = -1 }
        }
        guard peek == "}", let low = minimum ?? (maximum != nil ? 0 : nil) else {
          position = start
          return nil
        }
        position += 1
        let high = maximum == -1 ? nil : maximum
        guard low <= 1000, high.map({ $0 >= low && $0 <= 1000 }) ?? true else {
          throw Refusal(message: "a repetition count above 1000 or out of order at \(start)")
        }
        return (low, high)
      }
    }

    mutating func number() -> Int? {
      var value: Int?
      while let c = peek, let digit = Int(String(c)), c.isASCII {
        value = min((value ?? 0) * 10 + digit, 1_000_000)
        position += 1
      }
      return value
    }

    mutating func parseAtom() throws(Refusal) -> Node {
      guard let c = peek else { throw Refusal(message: "ends early") }
      position += 1
      switch c {
      case ".": return .set(.any)
      case "^": return .lineStart
      case "$": return .lineEnd
      case "(":
        if peek == "?" {
          guard position + 1 < scalars.count, scalars[position + 1] == ":" else {
            throw Refusal(message: "look-arounds, named groups and flags ((?...) at \(position - 1)) are not supported")
          }
          position += 2
        }
        let inner = try parseAlternation()
        guard peek == ")" else { throw Refusal(message: "unclosed '(' ") }
        position += 1
        return inner
      case "[": return .set(try parseClass())
      case "\\": return .set(try parseEscape(inClass: false).set)
      case "*", "+", "?": throw Refusal(message: "nothing to repeat at \(position - 1)")
      default: return .set(.single(c))
      }
    }

    mutating func parseEscape(inClass: Bool) throws(Refusal) -> (set: CharacterSet, single: Unicode.Scalar?) {
      guard let c = peek else { throw Refusal(message: "a trailing backslash") }
      position += 1
      switch c {
      case "d": return (CharacterSet(ranges: CharacterSet.digit, negated: false), nil)
      case "D": return (CharacterSet(ranges: CharacterSet.digit, negated: true), nil)
      case "w": return (CharacterSet(ranges: CharacterSet.word, negated: false), nil)
      case "W": return (CharacterSet(ranges: CharacterSet.word, negated: true), nil)
      case "s": return (CharacterSet(ranges: CharacterSet.space, negated: false), nil)
      case "S": return (CharacterSet(ranges: CharacterSet.space, negated: true), nil)
      case "n": return (.single("\n"), "\n")
      case "t": return (.single("\t"), "\t")
      default:
        if c.properties.numericType != nil || (c.isASCII && c.properties.isAlphabetic) {
          throw Refusal(message: "the escape \\\(c) (back-references and classes beyond \\d \\w \\s) is not supported")
        }
        return (.single(c), c)
      }
    }

    mutating func parseClass() throws(Refusal) -> CharacterSet {
      var set = CharacterSet(ranges: [], negated: false)
      if peek == "^" {
        set.negated = true
        position += 1
      }
      var first = true
      while let c = peek, c != "]" || first {
        first = false
        position += 1
        var low: Unicode.Scalar = c
        if c == "\\" {
          let escape = try parseEscape(inClass: true)
          guard let single = escape.single else {
            guard !escape.set.negated else {
              throw Refusal(message: "negated classes (\\D \\W \\S) inside [...] are not supported")
            }
            set.ranges += escape.set.ranges
            continue
          }
          low = single
        }
        if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
          position += 1
          guard var high = peek else { break }
          position += 1
          if high == "\\" { high = try parseEscape(inClass: true).single ?? high }
          guard low.value <= high.value else { throw Refusal(message: "a class range out of order") }
          set.ranges.append(low.value...high.value)
        } else {
          set.ranges.append(low.value...low.value)
        }
      }
      guard peek == "]" else { throw Refusal(message: "unclosed '['") }
      position += 1
      return set
    }
  }
}
