import TestSupport
import Testing

@testable import Adapters

/// Dense references on small shapes: `T` and `Bh Ah` formed explicitly in fp64.
enum Dense {
  static func ideal(_ f: ModuleFactors) -> Matrix {
    var t = Matrix(zeros: f.d, f.k)
    for u in f.a.indices where f.a[u].rows > 0 { t = t + f.weights[u] * (f.bs[u] * f.a[u]) }
    return t
  }

  static func relativeError(_ f: ModuleFactors, _ e: ModuleEstimate) -> Double {
    let t = ideal(f)
    return (t - e.b * e.a).squaredNorm.squareRoot() / t.squaredNorm.squareRoot()
  }

  /// Random clients around a shared adapter: `spread` sets how far they drift apart.
  static func clients(_ u: Int, d: Int, k: Int, ranks: [Int]? = nil, spread: Double, seed: UInt64) -> ModuleFactors {
    var generator = SeededGenerator(seed: seed)
    func random(_ rows: Int, _ cols: Int) -> Matrix {
      Matrix(
        rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Double.random(in: -1...1, using: &generator) })
    }
    let r = ranks?.max() ?? 4
    let sharedA = random(r, k)
    let sharedB = random(d, r)
    var a: [Matrix] = []
    var b: [Matrix] = []
    for i in 0..<u {
      let ri = ranks?[i] ?? r
      a.append((sharedA + spread * random(r, k)).rows(0..<ri))
      b.append((sharedB + spread * random(d, r)).columns(0..<ri))
    }
    let w = (0..<u).map { Double($0 + 1) }
    return ModuleFactors(name: "layer", d: d, k: k, a: a, bs: b, weights: w.map { $0 / w.reduce(0, +) })
  }
}

@Suite("Rules against dense computations and the invariants of aggregation.md")
struct RuleTests {
  static let spreads: [Double] = [1, 1e-2, 1e-4, 1e-6]

  @Test("Every rule's reported error equals the dense one (down to errors of 1e-6)", arguments: spreads)
  func denseAgreement(_ spread: Double) {
    let f = Dense.clients(4, d: 24, k: 20, spread: spread, seed: 11)
    let g = ModuleGeometry(f)
    #expect(abs(g.normT - Dense.ideal(f).squaredNorm.squareRoot()) <= 1e-12 * g.normT)
    for estimate in [
      FedAvg.aggregate(f, geometry: g), FloraNA.aggregate(f, geometry: g),
      SVDOptimal.aggregate(f, geometry: g, rank: 4),
    ] {
      if spread == 1e-6 { #expect(Dense.relativeError(f, estimate) < 1e-4) }
      let dense = Dense.relativeError(f, estimate)
      let reported = g.relative(estimate.residual) ?? -1
      // Gram roots resolve residuals to ~1e-8 of ||T||: relative errors of 1e-6 agree to 1e-5.
      #expect(
        abs(reported - dense) <= 1e-5 * dense + 1e-7,
        "spread \(spread) rank \(estimate.rank) p \(estimate.p != nil): reported \(reported), dense \(dense)")
    }
  }

  @Test("0 <= e_svd <= e_flora-na <= e_fedavg, e_stack ~ 0", arguments: spreads)
  func ordering(_ spread: Double) {
    let f = Dense.clients(5, d: 30, k: 18, ranks: [4, 4, 3, 4, 2], spread: spread, seed: 5)
    let g = ModuleGeometry(f)
    let fedavg = FedAvg.aggregate(f, geometry: g).computedResidual
    let flora = FloraNA.aggregate(f, geometry: g).computedResidual
    let svd = SVDOptimal.aggregate(f, geometry: g, rank: 4).computedResidual
    #expect(0 <= svd && svd <= flora * (1 + 1e-9) && flora <= fedavg * (1 + 1e-12))
    // The floor (from the Cholesky core) is exact to ~1e-17 of ||T|| against a dense SVD; the
    // SVD rule's factors carry the rounding of their split, about 1e-8 of ||T|| (SVDOptimal).
    #expect(abs(svd - g.floorResidual(rank: 4)) <= 1e-8 * g.normT)
    #expect(Dense.relativeError(f, Stack.aggregate(f)) < 1e-12)
  }

  @Test("Many clients on a small layer: the dense route is chosen and agrees with the Gram route")
  func denseRoute() {
    let f = Dense.clients(40, d: 12, k: 10, spread: 0.3, seed: 11)
    #expect(DenseErrors.isCheaper(f))
    #expect(!DenseErrors.isCheaper(Dense.clients(3, d: 64, k: 96, spread: 0.3, seed: 11)))
    let (g, dense) = (ModuleGeometry(f), DenseErrors(f))
    let fedavg = FedAvg.aggregate(f, geometry: g)
    #expect(abs(dense.normT - g.normT) <= 1e-12 * g.normT)
    #expect(abs(dense.residual(fedavg) - fedavg.computedResidual) <= 1e-10 * g.normT)
    #expect(abs(dense.residual(fedavg) - Dense.relativeError(f, fedavg) * g.normT) <= 1e-12 * g.normT)
    for rank in [1, 4, 8] {
      #expect(abs(dense.floorResidual(rank: rank) - g.floorResidual(rank: rank)) <= 1e-10 * g.normT)
    }
  }

  @Test("One client: every rule is exact")
  func oneClient() {
    let f = Dense.clients(1, d: 16, k: 12, spread: 0.5, seed: 2)
    let g = ModuleGeometry(f)
    for estimate in [
      FedAvg.aggregate(f, geometry: g), FloraNA.aggregate(f, geometry: g),
      SVDOptimal.aggregate(f, geometry: g, rank: 4),
    ] {
      #expect(Dense.relativeError(f, estimate) < 1e-10)
      #expect((g.relative(estimate.residual) ?? 1) < 1e-7)
    }
  }

  @Test("Identical clients: FedAvg is exact (and FLoRA-NA's singular system is handled)")
  func identical() {
    let f = Dense.clients(3, d: 16, k: 12, spread: 0, seed: 3)
    let g = ModuleGeometry(f)
    #expect((g.relative(FedAvg.aggregate(f, geometry: g).residual) ?? 1) < 1e-7)
    let flora = FloraNA.aggregate(f, geometry: g)
    #expect(Dense.relativeError(f, flora) < 1e-7)
  }

  @Test("Results do not depend on client order")
  func order() {
    let f = Dense.clients(4, d: 20, k: 16, spread: 0.3, seed: 9)
    let order = [2, 0, 3, 1]
    let g = ModuleFactors(
      name: "x", d: f.d, k: f.k, a: order.map { f.a[$0] }, bs: order.map { f.bs[$0] },
      weights: order.map { f.weights[$0] })
    for (one, two) in [
      (FedAvg.aggregate(f, geometry: ModuleGeometry(f)), FedAvg.aggregate(g, geometry: ModuleGeometry(g))),
      (FloraNA.aggregate(f, geometry: ModuleGeometry(f)), FloraNA.aggregate(g, geometry: ModuleGeometry(g))),
    ] {
      #expect(abs(one.computedResidual - two.computedResidual) <= 1e-9 * max(one.computedResidual, 1e-300))
    }
  }

  @Test("Scaling every B by c scales T and every estimate by c")
  func scaling() {
    let f = Dense.clients(3, d: 14, k: 10, spread: 0.2, seed: 4)
    let c = 3.5
    let g = ModuleFactors(name: "x", d: f.d, k: f.k, a: f.a, bs: f.bs.map { c * $0 }, weights: f.weights)
    let (gf, gg) = (ModuleGeometry(f), ModuleGeometry(g))
    #expect(abs(gg.normT - c * gf.normT) <= 1e-12 * gg.normT)
    for (x, y) in [
      (FedAvg.aggregate(f, geometry: gf), FedAvg.aggregate(g, geometry: gg)),
      (FloraNA.aggregate(f, geometry: gf), FloraNA.aggregate(g, geometry: gg)),
    ] {
      #expect(abs(y.computedResidual - c * x.computedResidual) <= 1e-8 * y.computedResidual)
    }
  }

  @Test("LAPACK layer: thin QR reconstructs, Q is orthonormal; Gram roots satisfy R^T R = G")
  func linearAlgebra() throws {
    let f = Dense.clients(1, d: 30, k: 7, spread: 0, seed: 8)
    let m = f.bs[0]
    let (q, r) = LinearAlgebra.thinQR(m)
    let qm = try #require(q)
    #expect(zip((qm * r).values, m.values).allSatisfy { abs($0 - $1) < 1e-12 })
    let gram = qm.gramOfColumns
    #expect(zip(gram.values, Matrix.identity(gram.rows).values).allSatisfy { abs($0 - $1) < 1e-12 })
    let g = m.gramOfColumns
    let root = LinearAlgebra.gramRoot(g).root
    #expect(
      zip(root.gramOfColumns.values, g.values).allSatisfy { abs($0 - $1) < 1e-9 * (g.values.map(abs).max() ?? 1) })
  }

  @Test("FLoRA-NA's gauge keeps sum p = 1, so Ah stays a weighted average of client As")
  func gauge() {
    let f = Dense.clients(4, d: 20, k: 16, spread: 0.5, seed: 21)
    let estimate = FloraNA.aggregate(f, geometry: ModuleGeometry(f))
    #expect(abs((estimate.p ?? []).reduce(0, +) - 1) < 1e-12)
  }
}

extension ModuleEstimate {
  /// The residual the rule computed (NaN, which fails every comparison, if it computed none).
  var computedResidual: Double { residual ?? .nan }
}
