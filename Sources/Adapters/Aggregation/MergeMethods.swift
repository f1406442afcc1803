/// The registry of merge methods: the one place a new method is added (its type, in its own file,
/// conforming to ``MergeMethod``). Order is the order of help texts and listings.
public enum MergeMethods {
  /// Every method, in the order of help texts.
  public static var all: [any MergeMethod.Type] {
    [FedAvg.self, FloraNA.self, SVDOptimal.self, Stack.self, Exact.self, FedEx.self]
  }

  /// The method named `name` or one of its aliases, in any case, with or without hyphens and
  /// underscores (`flora-na`, `florana`, `FLORA_NA`).
  /// - Parameter name: what a user typed.
  /// - Returns: the method's type; nil for an unknown name.
  public static func named(_ name: String) -> (any MergeMethod.Type)? {
    func plain(_ name: String) -> String { name.lowercased().filter { $0 != "-" && $0 != "_" } }
    let wanted = plain(name)
    return all.first { ([$0.name] + $0.aliases).map(plain).contains(wanted) }
  }
}
