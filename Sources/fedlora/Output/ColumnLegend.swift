/// What each report column means: one vocabulary for merge and inspect, shown by `--explain`
/// and in `--help` and the man pages.
enum ColumnLegend {
  /// Column name (or its prefix, for the numbered ones) and meaning, in the order shown.
  static let entries: [(column: String, meaning: String)] = [
    ("module", "the adapted weight (PEFT name without base_model.model.)"),
    ("d, k", "the weight's out and in features: the update B A is [d, k]"),
    ("shape", "[d, k] of the update"),
    ("r", "the adapter's rank at this module; rank: the written rank"),
    ("alpha, scale", "LoRA alpha and the scale s = alpha / r (alpha / sqrt(r) with rsLoRA)"),
    ("dtype", "how the factors are stored"),
    ("norm_A, norm_B, norm_bias", "Frobenius norms of A, B and lora_B.bias"),
    ("norm_sBA", "Frobenius norm of the update s B A"),
    ("sigma_N", "the N-th largest singular value of s B A"),
    ("numerical_rank", "singular values above max(d, k) eps64 sigma_1"),
    ("stable_rank", "||s B A||_F^2 / sigma_1^2: how many directions carry the update"),
    ("below_eps", "singular values a dense product in the adapter's dtype would lose"),
    ("nan, inf", "non-finite values in the factors"),
    ("flags", "B-all-zero (untrained), rank-deficient, non-finite, config-rank-mismatch"),
    ("norm_T", "Frobenius norm of the ideal update T = sum_u w_u s_u B_u A_u"),
    ("cos_N", "client N's cosine similarity to T (client drift; the header names the client)"),
    ("fedavg, flora_na", "relative error ||T - Bh Ah|| / ||T|| of the FedAvg and FLoRA-NA aggregates"),
    ("relative_error", "relative error ||T - Bh Ah|| / ||T|| of the adapter written"),
    ("floor", "the rank-R floor: the error of the best rank-R adapter (svd), which no rank-R adapter beats"),
    ("against", "relative error of the audited adapter (--against)"),
    ("bar(COLUMN)", "COLUMN drawn to scale, the largest row full width"),
  ]

  /// The legend lines for `columns` (numbered columns by their prefix), for a report's footer.
  static func lines(for columns: [String]) -> [String] {
    func shown(_ entry: String) -> Bool {
      entry.split(separator: ",").map { $0.trimmingCharacters(in: " ") }.contains { name in
        name.hasSuffix("_N")
          ? columns.contains { $0.hasPrefix(name.dropLast()) } : name.hasPrefix("bar(") || columns.contains(name)
      }
    }
    let width = entries.map(\.column.count).max() ?? 0
    return ["columns:"]
      + entries.filter { shown($0.column) }.map { "  " + $0.column.padding(width) + "  " + $0.meaning }
  }

  /// The whole legend as one paragraph of help text.
  static var help: String {
    "Columns: " + entries.map { "\($0.column): \($0.meaning)" }.joined(separator: "; ") + "."
  }
}

extension Substring {
  func trimmingCharacters(in set: String) -> String {
    var text = self
    while let first = text.first, set.contains(first) { text = text.dropFirst() }
    while let last = text.last, set.contains(last) { text = text.dropLast() }
    return String(text)
  }
}
