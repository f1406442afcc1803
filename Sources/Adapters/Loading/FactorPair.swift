import Checkpoints

/// The checks and views the non-PEFT readers share: a `down` / `up` pair (linear or conv) as
/// the matrices `A [r, k]` and `B [d, r]`, and a stored alpha.
enum FactorPair {
  /// `down` / `up` as `A` / `B`, with every shape relation checked and a mismatch named by tensor:
  /// linear `[r, in]` / `[out, r]`; conv `[r, in, kh, kw]` / `[out, r, 1, 1]`, whose update is
  /// exactly the matrix `[out, in * kh * kw]` over the flattened kernel (views of the same bytes).
  static func views(path: String, module: String, down: Tensor, up: Tensor) throws(AdapterError) -> (
    a: Tensor, b: Tensor, kernel: [Int]?
  ) {
    func fail(_ tensor: Tensor, _ message: String) -> AdapterError {
      .badFactor(path: path, module: module, tensor: tensor.name, message: message)
    }
    let limit = Int(Int32.max)
    for tensor in [down, up] where tensor.shape.contains(where: { $0 < 1 || $0 > limit }) {
      throw fail(tensor, "shape \(tensor.shape): every dimension must be 1 to 2^31-1")
    }
    switch (down.shape.count, up.shape.count) {
    case (2, 2):
      guard down.shape[0] == up.shape[1] else {
        throw fail(up, "shape \(up.shape) is not [out, r] for \(down.name) \(down.shape) = [r, in]")
      }
      return (down, up, nil)
    case (4, 4):
      guard up.shape[2] == 1, up.shape[3] == 1 else {
        throw fail(up, "a conv LoRA's up factor must be [out, r, 1, 1], found \(up.shape)")
      }
      guard down.shape[0] == up.shape[1] else {
        throw fail(
          up, "shape \(up.shape) has rank \(up.shape[1]), \(down.name) \(down.shape) has rank \(down.shape[0])")
      }
      let (k1, o1) = down.shape[1].multipliedReportingOverflow(by: down.shape[2])
      let (k, o2) = k1.multipliedReportingOverflow(by: down.shape[3])
      guard !o1, !o2, k <= limit else {
        throw fail(down, "in * kh * kw of \(down.shape) exceeds 2^31-1")
      }
      // Views of the same bytes: row-major [r, in, kh, kw] is [r, in*kh*kw]; [out, r, 1, 1] is [out, r].
      return (
        down.reshaped([down.shape[0], k])!, up.reshaped([up.shape[0], up.shape[1]])!, [down.shape[2], down.shape[3]]
      )
    default:
      let bad = down.shape.count == 2 || down.shape.count == 4 ? up : down
      throw fail(
        bad,
        "shape \(bad.shape): a LoRA pair is [r, in] / [out, r] (linear) or [r, in, kh, kw] / [out, r, 1, 1] (conv); here \(down.name) \(down.shape), \(up.name) \(up.shape)"
      )
    }
  }

  /// The alpha a stored `alpha` tensor gives (kohya, diffusers): one finite number >= 0;
  /// missing or 0 means `rank` (scale 1), as kohya-ss and diffusers apply it.
  static func alpha(_ tensor: Tensor?, rank: Int, path: String) throws(AdapterError) -> Double {
    guard let tensor else { return Double(rank) }
    let value: Double? = try AdapterError.wrap { () throws(CheckpointError) in try tensor.scalarValue() }
    guard let value else {
      throw .badAlpha(
        path: path, tensor: tensor.name, found: "a \(tensor.dtype.rawValue) tensor of shape \(tensor.shape)")
    }
    guard value.isFinite, value >= 0 else { throw .badAlpha(path: path, tensor: tensor.name, found: "\(value)") }
    return value == 0 ? Double(rank) : value
  }
}
