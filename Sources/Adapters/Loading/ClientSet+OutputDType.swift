import Checkpoints

extension ClientSet {
  /// Where a merged adapter's dtype comes from.
  public enum DTypeSource: String, Sendable {
    /// Every client stores its factors in this dtype.
    case clients
    /// The clients differ: the narrowest dtype that holds each of them exactly.
    case widest
    /// The user chose it.
    case given
  }

  /// The dtype a merged adapter is written in unless one is given: the clients' when they agree,
  /// else the narrowest that holds every client's values exactly (F64 when a client is F64, else
  /// F32: F16 and BF16 hold neither each other nor every quantised value). It depends on the set
  /// of dtypes only, never on the clients' order.
  public var outputDType: (dtype: DType, source: DTypeSource) {
    let dtypes = Set(clients.map(\.dtype))
    if dtypes.count == 1, let only = dtypes.first { return (only, .clients) }
    return (dtypes.contains(.f64) ? .f64 : .f32, .widest)
  }

  /// The clients' dtypes, each once, in a fixed order (for reports).
  public var clientDTypes: [DType] { Set(clients.map(\.dtype)).sorted { $0.rawValue < $1.rawValue } }
}
