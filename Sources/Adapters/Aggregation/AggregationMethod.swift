/// A merge method by name: a value naming one of ``MergeMethods/all`` (what options, reports and
/// provenance records carry). Each method's file declares its constant (``fedavg``, ...).
public struct AggregationMethod: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
  /// The method's name.
  public let rawValue: String

  /// The registered method of exactly this name; nil for any other (see ``init(name:)`` for aliases and
  /// other spellings).
  /// - Parameter rawValue: a method's ``MergeMethod/name``, such as `flora-na`.
  public init?(rawValue: String) {
    guard MergeMethods.all.contains(where: { $0.name == rawValue }) else { return nil }
    self.rawValue = rawValue
  }

  /// The value of a registered method type.
  /// - Parameter type: a type of ``MergeMethods/all``, such as `FloraNA.self`.
  public init(_ type: any MergeMethod.Type) { rawValue = type.name }

  /// The method named `name` or one of its ``aliases``, in any case, with or without hyphens and
  /// underscores (`flora-na`, `florana`, `FLORA_NA`); nil for an unknown name.
  /// - Parameter name: what a user typed.
  public init?(name: String) {
    guard let type = MergeMethods.named(name) else { return nil }
    self.init(type)
  }

  /// Every registered method, in the registry's order.
  public static var allCases: [AggregationMethod] { MergeMethods.all.map(AggregationMethod.init) }

  /// The method's type, which declares everything about it.
  public var type: any MergeMethod.Type {
    guard let type = MergeMethods.all.first(where: { $0.name == rawValue }) else {
      preconditionFailure("\(rawValue) is not a registered method")
    }
    return type
  }

  /// The name.
  public var description: String { rawValue }
  /// Other names the method is known by: `fedit` for FedAvg, the FedIT paper's name.
  public var aliases: [String] { type.aliases }
  /// Whether the method writes merged base weights (and so needs `--base`).
  public var needsBase: Bool { type.needsBase }
  /// Whether the method's factors come from the Gram blocks (so its errors come for free); the
  /// others are fixed-coefficient sums, which a merge without errors computes alone.
  public var solvesOnGrams: Bool { !type.canSkipErrors }
  /// Whether the method zero-pads smaller ranks (fedavg, flora-na, fedex's FedAvg adapter).
  public var zeroPadsRanks: Bool { type.zeroPadsRanks }
}
