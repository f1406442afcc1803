import Checkpoints

/// One aggregation method of aggregation.md, as a type: everything the rest of the code asks of
/// a method is declared here, so that adding one is its own file and one line of
/// ``MergeMethods/all``. The CLI's option checks and help come from these declarations.
///
/// A method's ``solve(_:)`` takes the ``Input`` it needs: ``GeometryInput`` (the Gram blocks,
/// always computed) for the methods that solve on them, ``FactorsInput`` (the factors, the Gram
/// blocks only when the merge computes errors) for fixed-coefficient sums. A method that needs
/// the geometry cannot be handed a module without it.
public protocol MergeMethod: Sendable {
  /// What ``solve(_:)`` is given for one module.
  associatedtype Input: SolveInput

  /// The method's name (`--method`, `fedlora.method`, reports).
  static var name: String { get }
  /// Other names it is known by (`fedit` for FedAvg).
  static var aliases: [String] { get }
  /// What it writes: an adapter (or, with a base, a merged base), a merged base, or both.
  static var writes: MethodOutput { get }
  /// The options it takes beyond the clients, weights, dtype and output.
  static var acceptedOptions: Set<MergeOption> { get }
  /// Whether it averages factors of one rank, zero-padding smaller ones (a warning is then owed).
  static var zeroPadsRanks: Bool { get }
  /// Whether its adapter keeps the clients' own config when they share rank, alpha and rsLoRA
  /// (B written unscaled); otherwise the output has scale 1 (`alpha = r`).
  static var keepsClientConfig: Bool { get }
  /// Whether reports show its per-module coefficients `p`, `q` and iterations.
  static var reportsCoefficients: Bool { get }
  /// Whether a merged base gets the clients' `lora_B.bias` update (not when an adapter written
  /// beside it carries it).
  static var foldsBiasIntoBase: Bool { get }

  /// The method for `set` with `options`, with what it computes once for every module (the
  /// model-wide coefficients of `flora-na --scope model`).
  /// - Throws: `AdapterError` when that computation fails (BLAS/LAPACK unavailable, a module unreadable).
  init(_ set: ClientSet, options: MergeOptions) throws(AdapterError)

  /// The rank written for a module whose clients (those that have it) hold `ranks`, of update
  /// shape `[d, k]`.
  func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int

  /// Every module's output rank, and why some are below the rank asked for; by default
  /// ``outputRank(clientRanks:d:k:)`` of each (svd may lower it to the update's rank).
  /// - Throws: `AdapterError` when a module needed to decide cannot be read.
  func outputRanks(_ set: ClientSet, options: MergeOptions) throws(AdapterError) -> [(rank: Int, limit: RankLimit?)]

  /// Whether a planned rank may still come out lower once solved (svd beyond the clients'
  /// largest rank, which a dry run does not compute).
  func rankIsUpperBound(_ rank: Int, clientRanks: [Int]) -> Bool

  /// The module's factors at `input.rank`, with their residual when the input holds the geometry.
  func solve(_ input: Input) -> ModuleEstimate

  /// The factors computed straight from the clients' files without widening them whole, when
  /// the method can (FedAvg without errors); nil otherwise.
  /// - Throws: `AdapterError` for a factor that cannot be read or is not finite.
  func streamed(_ set: ClientSet, module: String) throws(AdapterError) -> ModuleEstimate?

  /// The update a merged base gets for a module: `left @ right` (`Bh Ah` by default; fedex's
  /// base gets `T - Bh Ah`, its adapter carrying `Bh Ah`).
  func baseUpdate(_ estimate: ModuleEstimate, factors: ModuleFactors) -> (left: Matrix, right: Matrix)
}

/// What a merge method writes.
public enum MethodOutput: Sendable {
  /// An adapter, or with a base a merged base checkpoint.
  case adapter
  /// A merged base checkpoint only (a base is required).
  case base
  /// A merged base checkpoint and an adapter beside it (a base is required).
  case baseAndAdapter
}

/// An option some methods take (`--rank`, `--scope`, `--max-iterations`).
public enum MergeOption: String, Sendable, CaseIterable {
  /// The output rank (svd).
  case rank
  /// Coefficients per module or shared by the model (flora-na).
  case scope
  /// The solver's iteration limit (flora-na).
  case maxIterations = "max-iterations"
}

extension MergeMethod {
  /// No other names.
  public static var aliases: [String] { [] }
  /// An adapter (or a merged base with a base).
  public static var writes: MethodOutput { .adapter }
  /// No options.
  public static var acceptedOptions: Set<MergeOption> { [] }
  /// Every rank taken as it is.
  public static var zeroPadsRanks: Bool { false }
  /// Scale 1 outputs.
  public static var keepsClientConfig: Bool { false }
  /// No coefficients in reports.
  public static var reportsCoefficients: Bool { false }
  /// The bias update goes into the base.
  public static var foldsBiasIntoBase: Bool { true }
  /// Whether the method needs a base (it writes merged base weights).
  public static var needsBase: Bool { writes != .adapter }
  /// Whether a merge may skip the errors: the method does not solve on the Gram blocks.
  public static var canSkipErrors: Bool { Input.canSkipErrors }

  /// ``outputRank(clientRanks:d:k:)`` of every module, no limit.
  /// - Parameters:
  ///   - set: the clients.
  ///   - options: the merge's options (unused by this default).
  /// - Returns: each module's rank, in ``ClientSet/moduleNames`` order, with no limit.
  /// - Throws: nothing in this default (a method's own may read modules).
  /// - Complexity: O(modules × clients); no factor is read.
  public func outputRanks(_ set: ClientSet, options: MergeOptions) throws(AdapterError)
    -> [(rank: Int, limit: RankLimit?)]
  {
    set.moduleNames.map { name in
      let entries = set.modules(named: name).compactMap { $0 }
      let shape = entries.first?.updateShape ?? [0, 0]
      return (outputRank(clientRanks: entries.map(\.rank), d: shape[0], k: shape[1]), nil)
    }
  }

  /// Planned ranks are exact.
  /// - Parameters:
  ///   - rank: a planned rank.
  ///   - clientRanks: the ranks of the clients that have the module.
  /// - Returns: false.
  public func rankIsUpperBound(_ rank: Int, clientRanks: [Int]) -> Bool { false }

  /// Nothing streamed.
  /// - Parameters:
  ///   - set: the clients.
  ///   - module: the module's name.
  /// - Returns: nil.
  /// - Throws: nothing in this default.
  public func streamed(_ set: ClientSet, module: String) throws(AdapterError) -> ModuleEstimate? { nil }

  /// `Bh Ah`.
  /// - Parameters:
  ///   - estimate: the solved module.
  ///   - factors: its clients' factors (unused by this default).
  /// - Returns: `(Bh, Ah)`.
  public func baseUpdate(_ estimate: ModuleEstimate, factors: ModuleFactors) -> (left: Matrix, right: Matrix) {
    (estimate.b, estimate.a)
  }
}

/// What a method's solve is given for one module: the factors, the rank to write, and the Gram
/// geometry when the method needs it or the merge computes errors.
public protocol SolveInput: Sendable {
  /// Whether a merge may leave the geometry out (the method's factors do not come from it).
  static var canSkipErrors: Bool { get }
  /// The module's stacked factors.
  var factors: ModuleFactors { get }
  /// The rank to write, from the merge's layout.
  var rank: Int { get }
  /// The geometry, when computed (the errors and the floor come from it).
  var computedGeometry: ModuleGeometry? { get }
  /// The input for `factors` at `rank`; `errors`: whether the merge computes errors from the Gram blocks.
  static func prepare(_ factors: ModuleFactors, rank: Int, errors: Bool) -> Self
}

/// The input of the fixed-coefficient methods: the factors, and the geometry only when the
/// merge computes errors.
public struct FactorsInput: SolveInput {
  /// The module's stacked factors.
  public let factors: ModuleFactors
  /// The rank to write.
  public let rank: Int
  /// The geometry, when the merge computes errors.
  public let geometry: ModuleGeometry?

  /// The factors, with `geometry` when errors are computed.
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - rank: the rank to write.
  ///   - geometry: the Gram geometry, or nil when the merge computes no errors.
  public init(factors: ModuleFactors, rank: Int, geometry: ModuleGeometry?) {
    (self.factors, self.rank, self.geometry) = (factors, rank, geometry)
  }

  /// Errors may be skipped.
  public static var canSkipErrors: Bool { true }
  /// ``geometry``.
  public var computedGeometry: ModuleGeometry? { geometry }
  /// The geometry is computed only for `errors`.
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - rank: the rank to write.
  ///   - errors: whether the merge computes errors.
  /// - Returns: the input.
  /// - Complexity: with `errors`, that of ``ModuleGeometry/init(_:)``; else O(1).
  public static func prepare(_ factors: ModuleFactors, rank: Int, errors: Bool) -> FactorsInput {
    FactorsInput(factors: factors, rank: rank, geometry: errors ? ModuleGeometry(factors) : nil)
  }
}

/// The input of the methods that solve on the Gram blocks: the factors and their geometry, always.
public struct GeometryInput: SolveInput {
  /// The module's stacked factors.
  public let factors: ModuleFactors
  /// The rank to write.
  public let rank: Int
  /// The Gram geometry of the factors.
  public let geometry: ModuleGeometry

  /// The factors and their geometry.
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - rank: the rank to write.
  ///   - geometry: the Gram geometry of `factors`.
  public init(factors: ModuleFactors, rank: Int, geometry: ModuleGeometry) {
    (self.factors, self.rank, self.geometry) = (factors, rank, geometry)
  }

  /// The errors come with the solve: never skipped.
  public static var canSkipErrors: Bool { false }
  /// ``geometry``.
  public var computedGeometry: ModuleGeometry? { geometry }
  /// The geometry, whatever `errors` says.
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - rank: the rank to write.
  ///   - errors: ignored: the solve needs the geometry.
  /// - Returns: the input.
  /// - Complexity: that of ``ModuleGeometry/init(_:)``.
  public static func prepare(_ factors: ModuleFactors, rank: Int, errors: Bool) -> GeometryInput {
    GeometryInput(factors: factors, rank: rank, geometry: ModuleGeometry(factors))
  }
}
