/// What bounds a module's output rank below the rank asked for.
public enum RankLimit: String, Sendable {
  /// `min(d, k)`, or the clients' ranks added up: no update of the module has a higher rank.
  case shape
  /// The ideal update's numerical rank (singular values above ``Merge/rankTolerance`` of the
  /// largest): further components would be zeros.
  case update
}
