/// Where the bytes of supplied tensors (``OutputTensor/Source/supplied(_:)``) go once a writer has
/// laid out its file(s): a writer's `open` writes the header and every tensor it can compute
/// itself, and returns this sink; the caller hands each supplied tensor over, in any order and
/// from any thread, then calls ``finish()``. The writer knows nothing of where the bytes come
/// from (a merge hands over its modules as its scheduler solves them).
///
/// A dry run's writers return a sink that takes nothing (``isDryRun``): nothing is computed for it.
public final class TensorSink: Sendable {
  struct Slot: Sendable {
    let file: OutputFile
    let offset: Int
    let tensor: OutputTensor
    let rowOrder: [Int]?
  }

  /// Fills the bytes of rows `range` (row `range.lowerBound` at the start of the buffer); called
  /// for several ranges at once from several threads.
  public typealias RowFill = @Sendable (Range<Int>, UnsafeMutableRawBufferPointer) throws -> Void

  private let slots: [String: Slot]
  private let files: [OutputFile]
  private let written = Locked(Set<String>())
  private let progress: ProgressHandler?
  /// Whether the sink belongs to a dry run: it writes nothing and expects nothing.
  public let isDryRun: Bool

  init(slots: [String: Slot], files: [OutputFile], progress: ProgressHandler?, dryRun: Bool) {
    self.slots = slots
    self.files = files
    self.progress = progress
    isDryRun = dryRun
  }

  /// The sink of one file whose `tensors` are laid out at `offsets`.
  convenience init(_ tensors: [OutputTensor], offsets: [Int], file: OutputFile, progress: ProgressHandler?) {
    var slots: [String: Slot] = [:]
    for (tensor, offset) in zip(tensors, offsets) {
      guard case let .supplied(supply) = tensor.source else { continue }
      precondition(slots[supply.key] == nil, "\(supply.key) supplied twice")
      slots[supply.key] = Slot(file: file, offset: offset, tensor: tensor, rowOrder: supply.rowOrder)
    }
    self.init(slots: slots, files: [file], progress: progress, dryRun: false)
  }

  /// A dry run's sink: nothing to write.
  static let dryRun = TensorSink(slots: [:], files: [], progress: nil, dryRun: true)

  /// One sink for the tensors of several (a sharded output's files, or the files of one output).
  static func combining(_ sinks: [TensorSink]) -> TensorSink {
    guard !sinks.contains(where: \.isDryRun) else { return dryRun }
    var slots: [String: Slot] = [:]
    for sink in sinks {
      slots.merge(sink.slots) { first, _ in preconditionFailure("\(first.tensor.name) supplied twice") }
    }
    return TensorSink(
      slots: slots, files: sinks.flatMap(\.files), progress: sinks.first?.progress, dryRun: false)
  }

  /// The keys of the tensors the sink expects, in no particular order.
  public var expected: [String] { Array(slots.keys) }

  /// Writes the whole tensor supplied under `key`: exactly its byte count, in the supplier's
  /// row order.
  ///
  /// - Parameters:
  ///   - key: the key the tensor was laid out with (``OutputTensor/Supply/key``).
  ///   - bytes: all of its bytes (a precondition), rows in the supplier's order.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` naming the destination.
  /// - Complexity: O(`bytes.count`).
  public func write(_ key: String, bytes: [UInt8]) throws {
    let slot = take(key)
    precondition(
      bytes.count == slot.tensor.byteCount,
      "\(slot.tensor.name): \(bytes.count) bytes supplied, \(slot.tensor.byteCount) laid out")
    if let order = slot.rowOrder {
      let rowBytes = slot.tensor.rowBytes
      try write(
        slot,
        rows: { rows, buffer in
          for (index, row) in rows.enumerated() {
            bytes[(order[row] * rowBytes)..<((order[row] + 1) * rowBytes)].withUnsafeBytes {
              UnsafeMutableRawBufferPointer(rebasing: buffer[(index * rowBytes)..<((index + 1) * rowBytes)])
                .copyMemory(from: $0)
            }
          }
        })
    } else {
      try slot.file.write(bytes, at: slot.offset)
    }
    progress?(slot.tensor.byteCount)
  }

  /// Writes the tensor supplied under `key` from `fill`, in slices of a few MB filled in
  /// parallel (memory: threads x a slice), in the supplier's row order.
  ///
  /// - Parameters:
  ///   - key: the key the tensor was laid out with.
  ///   - fill: fills a range of the supplier's rows; called from several threads.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)``, or what `fill` throws.
  /// - Complexity: O(the tensor's bytes), in parallel; memory threads × a slice of about 16 MB.
  public func write(_ key: String, rows fill: @escaping RowFill) throws {
    let slot = take(key)
    if let order = slot.rowOrder {
      // Output row i is the supplier's row order[i]: asked for one row at a time.
      let rowBytes = slot.tensor.rowBytes
      try write(
        slot,
        rows: { rows, buffer in
          for (index, row) in rows.enumerated() {
            try fill(
              order[row]..<(order[row] + 1),
              UnsafeMutableRawBufferPointer(rebasing: buffer[(index * rowBytes)..<((index + 1) * rowBytes)]))
          }
        })
    } else {
      try write(slot, rows: fill)
    }
    progress?(slot.tensor.byteCount)
  }

  private func write(_ slot: Slot, rows fill: @escaping RowFill) throws {
    _ = try parallelMap(TensorDataWriter.rowSlices(slot.tensor)) { rows in
      try TensorDataWriter.writeRows(rows, of: slot.tensor, fill: fill, at: slot.offset, to: slot.file)
    }
  }

  private func take(_ key: String) -> Slot {
    precondition(!isDryRun, "a dry run's sink takes no bytes")
    guard let slot = slots[key] else { preconditionFailure("no tensor is supplied as \(key)") }
    let fresh = written.withLock { $0.insert(key).inserted }
    precondition(fresh, "\(key) supplied twice")
    return slot
  }

  /// Checks that every supplied tensor was written, and flushes the files to stable storage.
  /// Every expected key must have been written (a precondition).
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` when a file cannot be synced.
  public func finish() throws {
    guard !isDryRun else { return }
    let missing = written.withLock { done in slots.keys.filter { !done.contains($0) } }
    precondition(missing.isEmpty, "supplied tensors never written: \(missing.sorted().prefix(3))")
    for file in files { try file.sync() }
  }
}
